// An OAuthClientProvider for the TypeScript SDK that keeps everything in memory and,
// instead of opening a browser, records the authorization URL for the scripted walk.

import { randomBytes } from "node:crypto";

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { auth } from "@modelcontextprotocol/sdk/client/auth.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

export class RecordingProvider {
  constructor({ redirectUrl, clientName }) {
    this.redirectUrl = redirectUrl;
    this.clientMetadata = {
      client_name: clientName,
      redirect_uris: [redirectUrl],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      // A native app with no secret, as desktop MCP clients register.
      token_endpoint_auth_method: "none",
    };
    this.authorizationUrl = undefined;
    this.sentState = undefined;
  }

  state() {
    this.sentState = randomBytes(16).toString("base64url");
    return this.sentState;
  }

  clientInformation() {
    return this.client;
  }

  saveClientInformation(client) {
    this.client = client;
  }

  tokens() {
    return this.savedTokens;
  }

  saveTokens(tokens) {
    this.savedTokens = tokens;
  }

  redirectToAuthorization(url) {
    this.authorizationUrl = url;
  }

  saveCodeVerifier(verifier) {
    this.verifier = verifier;
  }

  codeVerifier() {
    if (!this.verifier) throw new Error("no code verifier was saved");
    return this.verifier;
  }

  /**
   * Checks the redirect the walk ended at, as a client's callback handler must: the
   * state it sent comes back, the issuer is the server (RFC 9207), and a code is
   * there. Returns the code.
   */
  codeFrom(redirect, issuer) {
    const params = redirect.searchParams;
    if (params.get("error")) {
      throw new Error(`authorization failed: ${params.get("error")}: ${params.get("error_description")}`);
    }
    if (params.get("state") !== this.sentState) throw new Error("the state came back changed");
    if (params.get("iss") !== issuer) throw new Error(`iss is ${params.get("iss")}, expected ${issuer}`);
    const code = params.get("code");
    if (!code) throw new Error(`no code in ${redirect}`);
    return code;
  }
}

/**
 * Starts a login the way the TypeScript SDK's client does (discovery, registration,
 * PKCE) and returns the provider holding the authorization URL to open.
 */
export async function startLogin(resource, options) {
  const provider = new RecordingProvider(options);
  if ((await auth(provider, { serverUrl: resource })) !== "REDIRECT") {
    throw new Error("the SDK did not ask for a login");
  }
  return provider;
}

/** Checks where the browser was sent back to and exchanges the code for tokens. */
export async function finishLogin(provider, resource, redirect, issuer) {
  const code = provider.codeFrom(redirect, issuer);
  if ((await auth(provider, { serverUrl: resource, authorizationCode: code })) !== "AUTHORIZED") {
    throw new Error("the code exchange did not authorize");
  }
  return provider.tokens();
}

/** Calls get_user_profile over Streamable HTTP with the provider's tokens. */
export async function callProfileTool(provider, resource) {
  const client = new Client({ name: "interop", version: "1.0.0" });
  await client.connect(new StreamableHTTPClientTransport(resource, { authProvider: provider }));
  try {
    return await client.callTool({ name: "get_user_profile", arguments: {} });
  } finally {
    await client.close();
  }
}
