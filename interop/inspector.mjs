// MCP Inspector's CLI against the reference server: `node inspector.mjs http|sse`.
// It runs `tools/list`, then `tools/call get_user_profile`. Without a TTY the CLI
// logs in only with MCP_AUTO_OPEN_ENABLED=true; it then prints the authorization URL
// on stderr and waits on its callback listener, to which the walk delivers the code.

import { spawn } from "node:child_process";
import { mkdirSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

import { artifacts, checkProfileResult, killOnTimeout, login, runTest, serverUrl } from "./lib/common.mjs";
import { walkAuthorization } from "./lib/walk.mjs";

// The CLI's default callback listener.
const CALLBACK_URL = "http://127.0.0.1:6276/oauth/callback";
const RUN_TIMEOUT_MS = 30_000;
const paths = { http: "/mcp", sse: "/sse" };

const launcher = join(
  dirname(createRequire(import.meta.url).resolve("@modelcontextprotocol/inspector/package.json")),
  "clients/launcher/build/index.js",
);

runTest(async () => {
  const transport = process.argv[2];
  if (!paths[transport]) throw new Error("usage: inspector.mjs http|sse");
  // A fresh home per run: the Inspector keeps registrations and tokens there, and a
  // token left from an earlier run would skip the login under test.
  const home = join(artifacts(), `inspector-home-${transport}`);
  rmSync(home, { recursive: true, force: true });
  mkdirSync(home, { recursive: true });
  const env = {
    ...process.env,
    HOME: home,
    MCP_AUTO_OPEN_ENABLED: "true",
    // Tokens go to a file in that home, so the second command reuses the login.
    MCP_INSPECTOR_SECRET_STORE: "file",
    // The CLI also tries to open a browser; `true` makes that a no-op.
    BROWSER: "true",
    NO_COLOR: "1",
  };
  const url = new URL(paths[transport], serverUrl()).href;
  const common = [launcher, "--cli", url, "--transport", transport, "--format", "json"];

  const listed = await inspector([...common, "--method", "tools/list"], env);
  const names = (listed.result.tools ?? []).map((tool) => tool.name);
  if (!names.includes("get_user_profile")) throw new Error(`tools/list lacks get_user_profile: ${names}`);

  const called = await inspector([...common, "--method", "tools/call", "--tool-name", "get_user_profile"], env);
  if (listed.logins !== 1) throw new Error(`tools/list logged in ${listed.logins} times, expected once`);
  if (called.logins !== 0) throw new Error("tools/call logged in again: the stored token was not accepted");
  const profile = await checkProfileResult(called.result, login());
  return `tools/list logged in, tools/call reused the stored token: ${profile}`;
});

/**
 * Runs one CLI command and returns its JSON result and how many logins it needed.
 * Every authorization URL it prints is walked, delivering the code to its listener.
 */
function inspector(args, env) {
  return new Promise((resolve, reject) => {
    const child = killOnTimeout(spawn(process.execPath, args, { env, stdio: ["ignore", "pipe", "pipe"] }));
    let stdout = "";
    let stderr = "";
    let logins = 0;
    const walks = [];
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`the Inspector did not finish within ${RUN_TIMEOUT_MS / 1000} s: ${lastLine(stderr)}`));
    }, RUN_TIMEOUT_MS);
    child.stdout.on("data", (chunk) => (stdout += chunk));
    child.stderr.on("data", (chunk) => {
      const before = stderr;
      stderr += chunk;
      // Only lines completed by this chunk, so a URL split across chunks is read once whole.
      const fresh = stderr.slice(before.lastIndexOf("\n") + 1).split("\n").slice(0, -1);
      for (const line of fresh) {
        const found = line.match(/navigate to:\s*(\S+)/i);
        if (!found) continue;
        logins += 1;
        walks.push(
          walkAuthorization(found[1], { redirectUri: CALLBACK_URL, deliver: true }).catch((error) => {
            child.kill("SIGKILL");
            reject(error);
          }),
        );
      }
    });
    child.on("close", async (code) => {
      clearTimeout(timer);
      await Promise.all(walks);
      if (code !== 0) {
        reject(new Error(`the Inspector exited with ${code}: ${lastLine(stdout) || lastLine(stderr)}`));
        return;
      }
      try {
        resolve({ result: JSON.parse(stdout).result, logins });
      } catch {
        reject(new Error(`the Inspector printed no JSON: ${lastLine(stdout)}`));
      }
    });
  });
}

function lastLine(text) {
  return text.trim().split("\n").at(-1) ?? "";
}
