// The TypeScript SDK's client against the reference server: `node ts-sdk.mjs
// streamable-http|sse`. The first connection is refused with 401 and starts the
// OAuth flow (discovery, registration, PKCE); the scripted walk plays the browser;
// finishAuth exchanges the code; a second connection calls get_user_profile.

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { SSEClientTransport } from "@modelcontextprotocol/sdk/client/sse.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";

import { checkProfileResult, login, runTest, serverUrl } from "./lib/common.mjs";
import { RecordingProvider } from "./lib/provider.mjs";
import { walkAuthorization } from "./lib/walk.mjs";

const transports = {
  "streamable-http": (provider) =>
    new StreamableHTTPClientTransport(new URL("/mcp", serverUrl()), { authProvider: provider }),
  sse: (provider) => new SSEClientTransport(new URL("/sse", serverUrl()), { authProvider: provider }),
};

runTest(async () => {
  const kind = process.argv[2];
  const makeTransport = transports[kind];
  if (!makeTransport) throw new Error(`usage: ts-sdk.mjs ${Object.keys(transports).join("|")}`);
  // Nothing listens here: the walk stops at this URL and hands the code over directly.
  const provider = new RecordingProvider({
    redirectUrl: "http://127.0.0.1:33418/callback",
    clientName: `Interop: TypeScript SDK over ${kind}`,
  });

  const first = makeTransport(provider);
  const refused = await new Client({ name: "interop-ts-sdk", version: "1.0.0" })
    .connect(first)
    .then(() => undefined, (error) => error);
  if (!(refused instanceof UnauthorizedError)) {
    throw new Error(`the unauthenticated connection should need authorization, got ${refused ?? "a session"}`);
  }
  if (!provider.authorizationUrl) throw new Error("the SDK never asked to open an authorization URL");

  const redirect = await walkAuthorization(provider.authorizationUrl, { redirectUri: provider.redirectUrl });
  await first.finishAuth(provider.codeFrom(redirect, serverUrl()));

  const client = new Client({ name: "interop-ts-sdk", version: "1.0.0" });
  await client.connect(makeTransport(provider));
  try {
    const { tools } = await client.listTools();
    if (!tools.some((tool) => tool.name === "get_user_profile")) {
      throw new Error(`tools/list lacks get_user_profile: ${tools.map((tool) => tool.name)}`);
    }
    const result = await client.callTool({ name: "get_user_profile", arguments: {} });
    return `${await checkProfileResult(result, login())} after discovery, DCR, PKCE and consent`;
  } finally {
    await client.close();
  }
});
