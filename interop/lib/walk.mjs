// The browser part of an OAuth login, scripted: follows the authorization URL hop by
// hop as a browser would, keeps the consent cookie, approves the consent form, logs
// in at the mock GitHub as the chosen user, and stops at the client's redirect URI.

import { fetchBounded, login, mockUrl } from "./common.mjs";

// The login takes five hops (authorize, consent, mock GitHub, callback, client); the
// limit only catches a redirect loop.
const MAX_HOPS = 12;

/**
 * Walks from `authorizationUrl` to `redirectUri` and returns the URL the browser
 * would have been sent to, with `code`, `state` and `iss`. With `deliver`, that URL
 * is also requested, as a browser would, so that a client's own callback listener
 * receives the code; the listener's answer must be a success.
 */
export async function walkAuthorization(authorizationUrl, { redirectUri, user = login(), deliver = false }) {
  const target = new URL(redirectUri);
  const cookies = new Map();
  let url = new URL(authorizationUrl);
  let request = { method: "GET" };
  const trail = [];
  for (let hop = 0; hop < MAX_HOPS; hop += 1) {
    if (url.origin === target.origin && url.pathname === target.pathname) {
      if (deliver) await deliverToListener(url);
      return url;
    }
    if (url.origin === new URL(mockUrl()).origin && url.pathname === "/login/oauth/authorize") {
      // The mock GitHub logs the browser in as whoever the URL names.
      url.searchParams.set("login", user);
    }
    trail.push(`${request.method} ${url.pathname}`);
    const headers = { ...request.headers };
    const cookie = cookieHeader(cookies, url);
    if (cookie) headers.cookie = cookie;
    const response = await fetchBounded(url, { ...request, headers, redirect: "manual" });
    keepCookies(cookies, url, response);
    const location = response.headers.get("location");
    if (response.status >= 300 && response.status < 400 && location) {
      url = new URL(location, url);
      request = { method: "GET" };
      continue;
    }
    const body = await response.text();
    const form = response.status === 200 ? consentForm(body, url) : undefined;
    if (!form) {
      throw new Error(
        `${trail.join(" -> ")} answered ${response.status}: ${pageText(body)}`,
      );
    }
    url = form.action;
    request = {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", origin: url.origin },
      body: new URLSearchParams({ ...form.fields, action: "approve" }).toString(),
    };
  }
  throw new Error(`no redirect to ${redirectUri} after ${MAX_HOPS} hops: ${trail.join(" -> ")}`);
}

/** The consent form's action and hidden fields, if the page is the consent page. */
function consentForm(html, pageUrl) {
  const formTag = html.match(/<form\b[^>]*>/i)?.[0];
  const approve = [...html.matchAll(/<button\b[^>]*>/gi)]
    .map(([tag]) => attributes(tag))
    .find((button) => button.name === "action" && button.value === "approve");
  if (!formTag || !approve) return undefined;
  const fields = {};
  for (const [tag] of html.matchAll(/<input\b[^>]*>/gi)) {
    const input = attributes(tag);
    if (input.type === "hidden" && input.name) fields[input.name] = input.value ?? "";
  }
  return { action: new URL(attributes(formTag).action ?? "", pageUrl), fields };
}

/** The attributes of one HTML start tag, unescaped. */
function attributes(tag) {
  const found = {};
  for (const [, name, value] of tag.matchAll(/([a-z_:-]+)(?:="([^"]*)")?/gi)) {
    found[name.toLowerCase()] = unescapeHtml(value ?? "");
  }
  return found;
}

function unescapeHtml(text) {
  const entities = { amp: "&", lt: "<", gt: ">", quot: '"', "#39": "'", "#x27": "'" };
  return text.replace(/&(amp|lt|gt|quot|#39|#x27);/g, (_, name) => entities[name]);
}

/** A page's text without markup, shortened for an error message. */
function pageText(html) {
  const text = html.replace(/<style[\s\S]*?<\/style>/gi, "").replace(/<[^>]+>/g, " ");
  return text.replace(/\s+/g, " ").trim().slice(0, 200);
}

// Cookies are kept per host, as browsers do (the port does not separate them); only
// what this flow needs: name, value and the host that set it.
function keepCookies(cookies, url, response) {
  for (const line of response.headers.getSetCookie()) {
    const [pair] = line.split(";");
    const separator = pair.indexOf("=");
    if (separator > 0) {
      cookies.set(`${url.hostname} ${pair.slice(0, separator).trim()}`, pair.slice(separator + 1).trim());
    }
  }
}

function cookieHeader(cookies, url) {
  return [...cookies]
    .filter(([key]) => key.startsWith(`${url.hostname} `))
    .map(([key, value]) => `${key.split(" ")[1]}=${value}`)
    .join("; ");
}

async function deliverToListener(url) {
  const response = await fetchBounded(url, { redirect: "manual" });
  const body = await response.text();
  if (response.status >= 400) {
    throw new Error(`the client's callback listener answered ${response.status}: ${pageText(body)}`);
  }
}
