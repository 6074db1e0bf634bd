//! AUTH-REG: dynamic client registration (RFC 7591) and the redirect-URI rules.

use serde_json::{Value, json};

use super::{Check, Ctx, Findings, Scope, Verdict, json_error};
use crate::body;
use crate::http::Req;
use crate::oauth::REDIRECT_URI;
use crate::oauth::flow::{AuthParams, Pkce};
use crate::oauth::registration::{self, ClientKind};

const AS: Scope = Scope::AuthServer;

pub fn checks() -> Vec<Check> {
    vec![
        Check::new("AUTH-REG-01", AS, body!(registration_is_offered)),
        Check::new("AUTH-REG-02", AS, body!(registration_answers_201)),
        Check::new("AUTH-REG-03", AS, body!(redirect_uri_rules)).also(&["AUTH-REG-04"]),
        Check::new("AUTH-REG-05", AS, body!(invalid_registrations_get_400)),
        Check::new("AUTH-REG-06", AS, body!(application_type_is_accepted)),
        Check::new("AUTH-REG-07", AS, body!(authorize_requires_client_id)),
        Check::new("AUTH-REG-04", AS, body!(super::auth_flow::no_open_redirect)),
    ]
}

/// The endpoint to judge, or why there is nothing to judge. Dynamic client registration
/// is optional: "Authorization servers and MCP clients SHOULD support" it (2025-03-26,
/// 2025-06-18; AUTH-REG-01 reports its absence) and "MAY" from 2025-11-25. A server whose
/// metadata advertises no `registration_endpoint` does not offer it, and a guessed
/// `/register` proves nothing about it.
fn registration_endpoint(cx: &Ctx) -> anyhow::Result<Result<url::Url, Verdict>> {
    Ok(cx.registration_offered()?.ok_or_else(|| {
        Verdict::Skip(
            "no registration_endpoint is advertised: dynamic client registration is optional \
             (SHOULD in 2025-03-26 and 2025-06-18, see AUTH-REG-01; MAY from 2025-11-25)"
                .into(),
        )
    }))
}

async fn registration_is_offered(cx: Ctx) -> anyhow::Result<Verdict> {
    let mut f = Findings::new(&cx);
    let d = cx.discovery()?;
    let advertised = d
        .metadata
        .as_ref()
        .and_then(|m| m.get("registration_endpoint"))
        .is_some();
    f.require(
        advertised || d.metadata.is_none(),
        "the metadata has no registration_endpoint",
        None,
    );
    Ok(f.verdict())
}

async fn registration_answers_201(cx: Ctx) -> anyhow::Result<Verdict> {
    let endpoint = match registration_endpoint(&cx)? {
        Ok(endpoint) => endpoint,
        Err(not_offered) => return Ok(not_offered),
    };
    let mut f = Findings::new(&cx);
    let body = registration::metadata(
        ClientKind::Public,
        "conformance registration",
        &[REDIRECT_URI],
    );
    let (a, b) = futures::try_join!(
        registration::post(cx.http(), &endpoint, &body),
        registration::post(cx.http(), &endpoint, &body)
    )?;
    for ex in [&a, &b] {
        if let Some(id) = ex.json().and_then(|d| {
            d.get("client_id")
                .and_then(Value::as_str)
                .map(str::to_owned)
        }) {
            cx.http().redactor.add(&id, "client_id");
        }
    }
    cx.record_exchange("registration (public client)", &a);
    f.require(
        a.status == 201,
        format!("registration answered {}", a.status),
        Some(&a),
    );
    let doc = a.json().unwrap_or(Value::Null);
    let id_a = doc.get("client_id").and_then(Value::as_str);
    f.require(id_a.is_some(), "the response has no client_id", Some(&a));
    f.require(
        doc.get("redirect_uris") == Some(&json!([REDIRECT_URI])),
        format!(
            "redirect_uris are not echoed: {}",
            super::shown_json(doc.get("redirect_uris"))
        ),
        Some(&a),
    );
    f.require(
        doc.get("client_secret").is_none(),
        "a client_secret was issued to a `none` client",
        Some(&a),
    );
    let id_b = b.json().and_then(|d| {
        d.get("client_id")
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    f.require(
        id_a.is_some() && id_a != id_b.as_deref(),
        "two registrations got the same client_id",
        Some(&b),
    );
    // "client_id_issued_at: Time at which the client identifier was issued", in seconds
    // since 1970 (RFC 7591 §3.2.1): optional, but when present it is metadata the server
    // provisioned, and a time a day or more away from now is not when it was issued. The
    // day leaves room for any clock skew between the suite's machine and the server's.
    if let Some(issued_at) = doc.get("client_id_issued_at") {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs());
        // A JSON number: RFC 7591 gives no integer form, and RFC 7519's NumericDate, the
        // same count of seconds, allows fractions.
        let plausible = issued_at
            .as_f64()
            .is_some_and(|at| (at - now as f64).abs() < CLOCK_SKEW_ALLOWED_SECS as f64);
        f.require(
            plausible,
            format!(
                "client_id_issued_at is {issued_at}, not the time of the registration in \
                 seconds since 1970 (now is {now})"
            ),
            Some(&a),
        );
    }
    // A confidential registration that gets a secret must say when it expires (RFC 7591 §3.2.1).
    let conf = registration::post(
        cx.http(),
        &endpoint,
        &registration::metadata(
            ClientKind::Confidential,
            "conformance confidential",
            &[REDIRECT_URI],
        ),
    )
    .await?;
    if let Some(d) = conf.json()
        && let Some(secret) = d.get("client_secret").and_then(Value::as_str)
    {
        cx.http().redactor.add(secret, "client_secret");
        f.require(
            d.get("client_secret_expires_at").is_some(),
            "client_secret without client_secret_expires_at",
            Some(&conf),
        );
    }
    Ok(f.verdict())
}

/// How far a time the server provisions may be from the suite's clock before it is wrong.
const CLOCK_SKEW_ALLOWED_SECS: u64 = 24 * 3600;

async fn redirect_uri_rules(cx: Ctx) -> anyhow::Result<Verdict> {
    let endpoint = match registration_endpoint(&cx)? {
        Ok(endpoint) => endpoint,
        Err(not_offered) => return Ok(not_offered),
    };
    let mut f = Findings::new(&cx);
    let accepted = [
        "http://localhost:33418/cb",
        "http://127.0.0.1:33418/cb",
        "https://app.example/cb",
    ];
    let rejected = [
        "http://evil.example/cb",
        "javascript:alert(1)",
        "https://app.example/cb#frag",
    ];
    // Only the refusal is a MUST ("All redirect URIs MUST be either localhost or use
    // HTTPS"); a server may be stricter about what it accepts (RFC 8252 section 8.3, for
    // one, recommends the loopback IP literal over `localhost`), as long as it refuses
    // clearly.
    for uri in accepted {
        let ex = registration::post(
            cx.http(),
            &endpoint,
            &registration::metadata(ClientKind::Public, "conformance", &[uri]),
        )
        .await?;
        if ex.status == 400 {
            f.note(format!(
                "{uri} was refused ({}): a stricter policy than the MCP rule, which is allowed",
                super::shown(json_error(&ex))
            ));
        } else {
            f.require(
                ex.status == 201,
                format!("registering {uri} answered {}", ex.status),
                Some(&ex),
            );
        }
    }
    for uri in rejected {
        let ex = registration::post(
            cx.http(),
            &endpoint,
            &registration::metadata(ClientKind::Public, "conformance", &[uri]),
        )
        .await?;
        if ex.status == 400 {
            f.prefer(
                json_error(&ex).as_deref() == Some("invalid_redirect_uri"),
                format!(
                    "rejecting {uri} used error {}, not invalid_redirect_uri",
                    super::shown(json_error(&ex))
                ),
                Some(&ex),
            );
        } else {
            f.require(
                false,
                format!("registering {uri} answered {}", ex.status),
                Some(&ex),
            );
        }
    }
    Ok(f.verdict())
}

async fn invalid_registrations_get_400(cx: Ctx) -> anyhow::Result<Verdict> {
    let endpoint = match registration_endpoint(&cx)? {
        Ok(endpoint) => endpoint,
        Err(not_offered) => return Ok(not_offered),
    };
    let mut f = Findings::new(&cx);
    let not_json = cx
        .http()
        .send(
            // On a connection of its own: one the server closes after failing must not go
            // back to the pool for another check's request.
            Req::post(endpoint.clone())
                .header("Connection", "close")
                .raw(b"client_name=x".to_vec(), "application/json"),
        )
        .await;
    match not_json {
        Ok(not_json) => {
            f.require(
                not_json.status == 400,
                format!("a body that is not JSON answered {}", not_json.status),
                Some(&not_json),
            );
        }
        // A server that fails on the body and closes the connection (uvicorn after an
        // unhandled exception) may have its error answer lost in the close: either way the
        // request got no 400, so the verdict must not depend on which arrived first.
        Err(e) if crate::http::is_connection_reset(&e) => {
            f.require(
                false,
                format!(
                    "a body that is not JSON got no answer; the server dropped the connection ({})",
                    cx.redact(&format!("{e:#}"))
                ),
                None,
            );
        }
        Err(e) => return Err(e),
    }
    let missing = registration::post(
        cx.http(),
        &endpoint,
        &json!({"client_name": "conformance", "grant_types": ["authorization_code"], "token_endpoint_auth_method": "none"}),
    )
    .await?;
    cx.record_exchange("registration error: no redirect_uris", &missing);
    f.require(
        missing.status == 400
            && matches!(
                json_error(&missing).as_deref(),
                Some("invalid_redirect_uri" | "invalid_client_metadata")
            ),
        format!(
            "no redirect_uris answered {} {}",
            missing.status,
            super::shown(json_error(&missing))
        ),
        Some(&missing),
    );
    // Valid redirect URIs beside a malformed field: RFC 7591 lets the server reject the
    // value or replace it ("MAY reject or replace any of the client's requested metadata
    // values"), but a rejection names the field's error, `invalid_client_metadata`, not
    // `invalid_redirect_uri` ("The value of one or more redirection URIs is invalid").
    let mut malformed = registration::metadata(ClientKind::Public, "conformance", &[REDIRECT_URI]);
    malformed["grant_types"] = json!("authorization_code");
    let malformed = registration::post(cx.http(), &endpoint, &malformed).await?;
    cx.record_exchange("registration error: grant_types not an array", &malformed);
    if malformed.status != 201 {
        f.require(
            malformed.status == 400
                && json_error(&malformed).as_deref() == Some("invalid_client_metadata"),
            format!(
                "grant_types given as a string, beside valid redirect URIs, answered {} {}, \
                 not 400 invalid_client_metadata",
                malformed.status,
                super::shown(json_error(&malformed))
            ),
            Some(&malformed),
        );
    }
    // An authentication method the metadata does not advertise: rejected, or replaced by
    // one it does. Registered as asked, the client holds a method the token endpoint says
    // it does not support (RFC 8414 `token_endpoint_auth_methods_supported`); no rule
    // names this, hence a warning.
    let advertised = super::advertised_auth_methods(&cx)?;
    let unadvertised = ["private_key_jwt", "tls_client_auth", "client_secret_jwt"]
        .into_iter()
        .find(|method| !advertised.iter().any(|a| a == method));
    if let (false, Some(method)) = (advertised.is_empty(), unadvertised) {
        let mut asked =
            registration::metadata(ClientKind::Confidential, "conformance", &[REDIRECT_URI]);
        asked["token_endpoint_auth_method"] = json!(method);
        let answer = registration::post(cx.http(), &endpoint, &asked).await?;
        if answer.status == 201 {
            // RFC 7591 §2: "If unspecified or omitted, the default is
            // `client_secret_basic`".
            let registered = answer.json().map(|body| {
                body.get("token_endpoint_auth_method")
                    .cloned()
                    .unwrap_or_else(|| json!("client_secret_basic"))
            });
            f.prefer(
                registered
                    .as_ref()
                    .and_then(Value::as_str)
                    .is_some_and(|got| advertised.iter().any(|a| a == got)),
                format!(
                    "a registration asking token_endpoint_auth_method {method}, which the \
                     metadata does not advertise, was registered with {}",
                    super::shown_json(registered.as_ref())
                ),
                Some(&answer),
            );
        }
    }
    let mut extra = registration::metadata(ClientKind::Public, "conformance", &[REDIRECT_URI]);
    extra["x_unknown_field"] = json!("ignored");
    let unknown = registration::post(cx.http(), &endpoint, &extra).await?;
    f.require(
        unknown.status == 201,
        format!("an unknown metadata field answered {}", unknown.status),
        Some(&unknown),
    );
    Ok(f.verdict())
}

async fn authorize_requires_client_id(cx: Ctx) -> anyhow::Result<Verdict> {
    let mut f = Findings::new(&cx);
    let pkce = Pkce::s256();
    let params = AuthParams {
        response_type: Some("code".into()),
        client_id: None,
        redirect_uri: Some("http://localhost:33418/cb".into()),
        state: Some("s".into()),
        code_challenge: Some(pkce.challenge),
        code_challenge_method: Some(pkce.method),
        ..AuthParams::default()
    };
    let ex = cx
        .http()
        .send(Req::get(params.url(&cx.endpoints()?.authorization)))
        .await?;
    f.require(
        !ex.is_redirect(),
        "the request without client_id was redirected",
        Some(&ex),
    );
    f.require(
        (400..500).contains(&ex.status),
        format!("answered {}", ex.status),
        Some(&ex),
    );
    Ok(f.verdict())
}

/// AUTH-REG-06: "MCP clients MUST specify an appropriate `application_type` during
/// Dynamic Client Registration", and "Native applications (desktop applications, mobile
/// apps, CLI tools, and locally-hosted web applications accessed via `localhost`) SHOULD
/// use `application_type: \"native\"`" (2026-07-28). A server that refuses the field
/// turns away the clients that follow the rule. A server may still refuse a pairing it
/// finds unfit, with an RFC 7591 error that says why.
async fn application_type_is_accepted(cx: Ctx) -> anyhow::Result<Verdict> {
    let endpoint = match registration_endpoint(&cx)? {
        Ok(endpoint) => endpoint,
        Err(not_offered) => return Ok(not_offered),
    };
    let mut f = Findings::new(&cx);
    for (application_type, redirect_uri) in [
        ("native", "http://127.0.0.1:33418/callback"),
        ("web", "https://app.example/callback"),
    ] {
        let mut body = registration::metadata(
            ClientKind::Public,
            "conformance application_type",
            &[redirect_uri],
        );
        body["application_type"] = json!(application_type);
        let ex = registration::post(cx.http(), &endpoint, &body).await?;
        if let Some(id) = ex.json().and_then(|d| {
            d.get("client_id")
                .and_then(Value::as_str)
                .map(str::to_owned)
        }) {
            cx.http().redactor.add(&id, "client_id");
        }
        let described = ex
            .json()
            .and_then(|d| d.get("error_description").cloned())
            .is_some_and(|d| d.as_str().is_some_and(|d| !d.is_empty()));
        f.require(
            ex.status == 201,
            format!(
                "application_type {application_type:?} with {redirect_uri} answered {} with \
                 error {}{}",
                ex.status,
                super::shown(json_error(&ex)),
                if described {
                    ""
                } else {
                    " without an error_description"
                }
            ),
            Some(&ex),
        );
    }
    Ok(f.verdict())
}
