//! A scripted browser for the authorization leg: it follows redirects one hop at a time, keeps a
//! cookie jar, submits consent forms, picks the GitHub account at the mock, and stops at the
//! client's redirect URI without connecting to it.
//!
//! Loopback is a secure context for browsers, so `Secure` and `__Host-` cookies set over
//! `http://127.0.0.1` are kept and sent back, as Chrome and Firefox do.

use anyhow::{Context as _, bail};
use reqwest::Method;
use url::Url;

use crate::http::{Exchange, Http, Req, is_loopback};

/// What to do on a consent page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consent {
    Approve,
    Deny,
    /// Stop on the consent page and hand it back.
    Stop,
}

/// Who logs in at the mock GitHub and what goes wrong there.
#[derive(Debug, Clone)]
pub struct Script {
    pub login: String,
    pub fault: Option<String>,
    pub consent: Consent,
    /// The client's redirect URI: reaching it ends the walk.
    pub redirect_uri: Url,
}

/// Where the walk ended.
#[derive(Debug, Clone)]
pub enum Arrival {
    /// A redirect to the client's redirect URI.
    Callback(Url),
    /// A page that is neither a redirect nor a form to submit (or a consent page with
    /// [`Consent::Stop`]).
    Page(Exchange),
    /// A redirect to a URL off this machine, which the browser does not follow.
    Offsite(Url),
}

/// One stored cookie.
#[derive(Debug, Clone)]
pub struct Cookie {
    pub name: String,
    pub value: String,
    pub host: String,
    pub path: String,
    /// The `Set-Cookie` line as received, for attribute checks.
    pub raw: String,
}

/// A minimal cookie jar: host-only cookies, path prefix matching, `Max-Age<=0` deletes.
#[derive(Debug, Clone, Default)]
pub struct CookieJar {
    pub cookies: Vec<Cookie>,
}

impl CookieJar {
    pub fn store(&mut self, url: &Url, set_cookie: &str) {
        let mut parts = set_cookie.split(';');
        let Some((name, value)) = parts.next().and_then(|nv| nv.split_once('=')) else {
            return;
        };
        let host = url.host_str().unwrap_or_default().to_owned();
        let mut path = default_path(url);
        let mut delete = false;
        for attr in parts {
            let (key, val) = attr.split_once('=').unwrap_or((attr, ""));
            match key.trim().to_ascii_lowercase().as_str() {
                "path" if val.trim().starts_with('/') => path = val.trim().to_owned(),
                "max-age" => delete |= val.trim().parse::<i64>().is_ok_and(|s| s <= 0),
                "expires" => delete |= val.contains("1970"),
                _ => {}
            }
        }
        let name = name.trim().to_owned();
        self.cookies
            .retain(|c| !(c.name == name && c.host == host && c.path == path));
        if !delete {
            self.cookies.push(Cookie {
                name,
                value: value.trim().to_owned(),
                host,
                path,
                raw: set_cookie.to_owned(),
            });
        }
    }

    /// The `Cookie` header for a request to `url`, if any cookie matches.
    pub fn header_for(&self, url: &Url) -> Option<String> {
        let host = url.host_str().unwrap_or_default();
        let path = url.path();
        let pairs: Vec<String> = self
            .cookies
            .iter()
            .filter(|c| c.host == host && path_matches(path, &c.path))
            .map(|c| format!("{}={}", c.name, c.value))
            .collect();
        (!pairs.is_empty()).then(|| pairs.join("; "))
    }
}

fn default_path(url: &Url) -> String {
    let path = url.path();
    match path.rfind('/') {
        Some(0) | None => "/".into(),
        Some(i) => path[..i].to_owned(),
    }
}

fn path_matches(request: &str, cookie: &str) -> bool {
    request == cookie
        || (request.starts_with(cookie)
            && (cookie.ends_with('/') || request[cookie.len()..].starts_with('/')))
}

/// A form ready to submit.
#[derive(Debug, Clone)]
pub struct Form {
    pub method: Method,
    pub action: Url,
    pub fields: Vec<(String, String)>,
}

/// Finds the form with a submit button for `choice` and fills it as a browser would.
pub fn consent_form(page_url: &Url, html: &str, choice: Consent) -> Option<Form> {
    let doc = scraper::Html::parse_document(html);
    let form_sel = scraper::Selector::parse("form").ok()?;
    let field_sel = scraper::Selector::parse("input, button, select, textarea").ok()?;
    let option_sel = scraper::Selector::parse("option").ok()?;
    for form in doc.select(&form_sel) {
        let mut fields = Vec::new();
        let mut chosen = None;
        for el in form.select(&field_sel) {
            let v = el.value();
            let name = v.attr("name").unwrap_or_default().to_owned();
            let kind = v.attr("type").unwrap_or(match v.name() {
                "button" => "submit",
                _ => "text",
            });
            match (v.name(), kind.to_ascii_lowercase().as_str()) {
                ("button" | "input", "submit" | "image") => {
                    let label = format!(
                        "{} {}",
                        v.attr("value").unwrap_or_default(),
                        el.text().collect::<String>()
                    )
                    .to_ascii_lowercase();
                    if chosen.is_none() && button_means(&label, choice) {
                        chosen = Some((name, v.attr("value").unwrap_or_default().to_owned()));
                    }
                }
                ("button", _) => {}
                ("input", "checkbox" | "radio") => {
                    if v.attr("checked").is_some() && !name.is_empty() {
                        fields.push((name, v.attr("value").unwrap_or("on").to_owned()));
                    }
                }
                ("select", _) => {
                    let options: Vec<_> = el.select(&option_sel).collect();
                    let pick = options
                        .iter()
                        .find(|o| o.value().attr("selected").is_some())
                        .or(options.first());
                    if let Some(o) = pick
                        && !name.is_empty()
                    {
                        let value = o
                            .value()
                            .attr("value")
                            .map(str::to_owned)
                            .unwrap_or_else(|| o.text().collect());
                        fields.push((name, value));
                    }
                }
                ("textarea", _) => {
                    if !name.is_empty() {
                        fields.push((name, el.text().collect()));
                    }
                }
                _ => {
                    if !name.is_empty() {
                        fields.push((name, v.attr("value").unwrap_or_default().to_owned()));
                    }
                }
            }
        }
        if let Some((name, value)) = chosen {
            if !name.is_empty() {
                fields.push((name, value));
            }
            let action = form
                .value()
                .attr("action")
                .filter(|a| !a.is_empty())
                .and_then(|a| page_url.join(a).ok())
                .unwrap_or_else(|| page_url.clone());
            let method = if form
                .value()
                .attr("method")
                .is_some_and(|m| m.eq_ignore_ascii_case("post"))
            {
                Method::POST
            } else {
                Method::GET
            };
            return Some(Form {
                method,
                action,
                fields,
            });
        }
    }
    None
}

fn button_means(label: &str, choice: Consent) -> bool {
    let approve = [
        "approve",
        "allow",
        "authorize",
        "authorise",
        "accept",
        "consent",
        "continue",
        "grant",
    ];
    let deny = ["deny", "reject", "cancel", "decline", "refuse"];
    match choice {
        Consent::Approve => {
            approve.iter().any(|w| label.contains(w)) && !deny.iter().any(|w| label.contains(w))
        }
        Consent::Deny => deny.iter().any(|w| label.contains(w)),
        Consent::Stop => false,
    }
}

/// The scripted browser. Each login normally gets a fresh one; checks that need a shared session
/// (consent per client) reuse one.
pub struct Browser {
    http: Http,
    pub jar: CookieJar,
    mock_origin: url::Origin,
    mock_github: Url,
    /// Whether the mock intercepts `github.com` for a server with GitHub's URLs fixed in its
    /// code; asked of the mock the first time a walk meets `https://github.com`.
    mock_intercepts: Option<bool>,
    /// In live mode, the origin of the server under test: the walk follows only its pages, and
    /// refuses to go on to the upstream login, where a person would log in.
    live_server: Option<url::Origin>,
    /// Every exchange of the last walk, in order.
    pub trail: Vec<Exchange>,
}

/// More hops than any authorization walk needs; a loop is reported, not followed forever.
const MAX_HOPS: usize = 20;

impl Browser {
    pub fn new(http: Http, mock_github: &Url) -> Browser {
        Browser {
            http,
            jar: CookieJar::default(),
            mock_origin: mock_github.origin(),
            mock_github: mock_github.clone(),
            mock_intercepts: None,
            live_server: None,
            trail: Vec::new(),
        }
    }

    /// A browser for live mode: no mock GitHub; it walks the pages of the server at `server`
    /// (which may be on another machine) and stops where the server sends it to log in upstream.
    pub fn live(http: Http, server: &Url) -> Browser {
        let placeholder =
            Url::parse(crate::config::NO_MOCK_GITHUB).expect("the placeholder is a URL");
        Browser {
            live_server: Some(server.origin()),
            ..Browser::new(http, &placeholder)
        }
    }

    pub fn http(&self) -> &Http {
        &self.http
    }

    /// Sends one request with the jar's cookies and stores the cookies it sets.
    pub async fn request(&mut self, mut req: Req) -> anyhow::Result<Exchange> {
        if let Some(cookie) = self.jar.header_for(&req.url) {
            req = req.header("Cookie", cookie);
        }
        let url = req.url.clone();
        let ex = self.http.send(req).await?;
        for value in ex.header_all("set-cookie") {
            self.jar.store(&url, value);
        }
        self.trail.push(ex.clone());
        Ok(ex)
    }

    /// Submits a form the way a browser would.
    pub async fn submit(&mut self, form: &Form, page: &Url) -> anyhow::Result<Exchange> {
        let pairs = form.fields.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        let req = if form.method == Method::POST {
            Req::post(form.action.clone())
                .header("Origin", page.origin().ascii_serialization())
                .header("Referer", page.as_str())
                .form(pairs)
        } else {
            let mut url = form.action.clone();
            url.query_pairs_mut().clear().extend_pairs(pairs);
            Req::get(url)
        };
        self.request(req).await
    }

    /// Navigates to `start` and walks until the client's redirect URI, a page, or off-machine.
    pub async fn walk(&mut self, start: Url, script: &Script) -> anyhow::Result<Arrival> {
        self.trail.clear();
        let mut next = Req::get(start);
        for _ in 0..MAX_HOPS {
            if at_redirect_uri(&next.url, &script.redirect_uri) {
                return Ok(Arrival::Callback(next.url));
            }
            if let Some(server) = &self.live_server {
                if next.url.origin() != *server {
                    // An authorization request to another origin (it names a client) is the
                    // upstream login, which only the mock lets the suite script; anything else
                    // off the server is where it sent the browser, for the check to judge.
                    if next.url.query_pairs().any(|(k, _)| k == "client_id") {
                        return Err(crate::checks::refuse(
                            crate::checks::live_reason::NEEDS_MOCK,
                        ));
                    }
                    return Ok(Arrival::Offsite(next.url));
                }
                let ex = self.request(next).await?;
                match self.next_hop(ex, script).await? {
                    Ok(req) => {
                        next = req;
                        continue;
                    }
                    Err(arrival) => return Ok(arrival),
                }
            }
            if !is_loopback(&next.url) {
                match self.github_at_the_mock(&next.url).await {
                    Some(mock_url) => next.url = mock_url,
                    None => return Ok(Arrival::Offsite(next.url)),
                }
            }
            if next.url.origin() == self.mock_origin
                && !next.url.path().starts_with("/_mock")
                && !next.url.query_pairs().any(|(k, _)| k == "login")
            {
                // Picking the account on "GitHub": the mock reads these from the authorize URL.
                let mut pairs = next.url.query_pairs_mut();
                pairs.append_pair("login", &script.login);
                if let Some(fault) = &script.fault {
                    pairs.append_pair("fault", fault);
                }
            }
            let ex = self.request(next).await?;
            match self.next_hop(ex, script).await? {
                Ok(req) => next = req,
                Err(arrival) => return Ok(arrival),
            }
        }
        bail!("more than {MAX_HOPS} redirects");
    }

    /// After a response: the next request (a redirect, or a consent form submitted as the
    /// script says), or where the walk ends.
    async fn next_hop(
        &mut self,
        ex: Exchange,
        script: &Script,
    ) -> anyhow::Result<Result<Req, Arrival>> {
        if ex.is_redirect() {
            let location = ex
                .location()
                .context("a redirect with an unusable Location")?;
            return Ok(Ok(Req::get(location)));
        }
        let is_html = ex.content_type().as_deref() == Some("text/html");
        if ex.status == 200 && is_html && script.consent != Consent::Stop {
            let page_url = ex.request.url.clone();
            if let Some(form) = consent_form(&page_url, &ex.text(), script.consent) {
                let submitted = self.submit(&form, &page_url).await?;
                if submitted.is_redirect() {
                    let location = submitted
                        .location()
                        .context("a redirect with an unusable Location")?;
                    return Ok(Ok(Req::get(location)));
                }
                return Ok(Err(Arrival::Page(submitted)));
            }
        }
        Ok(Err(Arrival::Page(ex)))
    }
}

impl Browser {
    /// `https://github.com/...` as the same path at the mock, when the mock intercepts GitHub's
    /// hosts (`mock-github --intercept`) for a server whose GitHub URLs are fixed in its code.
    /// The suite itself only ever talks to loopback, so the browser leg goes to the mock's own
    /// listener, as a user's browser would reach github.com.
    async fn github_at_the_mock(&mut self, url: &Url) -> Option<Url> {
        if url.scheme() != "https" || url.host_str() != Some(mock_github::GITHUB_HOST) {
            return None;
        }
        if self.mock_intercepts.is_none() {
            let probe = self.mock_github.join(mock_github::INTERCEPT_PATH).ok()?;
            // Sent past the jar and the trail: this is the suite asking the mock, not the
            // browser's walk.
            let answer = self.http.send(Req::get(probe)).await;
            self.mock_intercepts = Some(answer.is_ok_and(|ex| ex.status == 200));
        }
        if self.mock_intercepts != Some(true) {
            return None;
        }
        let mut mapped = self.mock_github.clone();
        mapped.set_path(url.path());
        mapped.set_query(url.query());
        Some(mapped)
    }
}

/// Whether `url` is the client's redirect URI (same scheme, host, port and path).
pub fn at_redirect_uri(url: &Url, redirect_uri: &Url) -> bool {
    url.scheme() == redirect_uri.scheme()
        && url.host_str() == redirect_uri.host_str()
        && url.port_or_known_default() == redirect_uri.port_or_known_default()
        && url.path() == redirect_uri.path()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = r#"<html><body>
      <form method="post" action="/consent">
        <input type="hidden" name="csrf" value="abc">
        <input type="hidden" name="request_id" value="r1">
        <input type="checkbox" name="remember" value="yes">
        <button type="submit" name="action" value="deny">Deny</button>
        <button type="submit" name="action" value="approve">Approve</button>
      </form></body></html>"#;

    #[test]
    fn the_approve_button_of_a_consent_form_is_chosen_with_the_hidden_fields() {
        let url = Url::parse("http://127.0.0.1:1/authorize?x=1").unwrap();
        let form = consent_form(&url, PAGE, Consent::Approve).unwrap();
        assert_eq!(form.method, Method::POST);
        assert_eq!(form.action.as_str(), "http://127.0.0.1:1/consent");
        assert_eq!(
            form.fields,
            [
                ("csrf".to_owned(), "abc".to_owned()),
                ("request_id".to_owned(), "r1".to_owned()),
                ("action".to_owned(), "approve".to_owned())
            ]
        );
        let deny = consent_form(&url, PAGE, Consent::Deny).unwrap();
        assert_eq!(deny.fields.last().unwrap().1, "deny");
    }

    #[test]
    fn secure_host_prefixed_cookies_are_kept_on_loopback_and_sent_back() {
        let mut jar = CookieJar::default();
        let url = Url::parse("http://127.0.0.1:1/authorize").unwrap();
        jar.store(
            &url,
            "__Host-csrf=v1; Path=/; Secure; HttpOnly; SameSite=Lax",
        );
        jar.store(&url, "other=v2; Path=/admin");
        let consent = Url::parse("http://127.0.0.1:1/consent").unwrap();
        assert_eq!(jar.header_for(&consent).as_deref(), Some("__Host-csrf=v1"));
        jar.store(&url, "__Host-csrf=; Path=/; Max-Age=0");
        assert_eq!(jar.header_for(&consent), None);
    }
}
