// `mcp-auth-conformance connect` with headless Chromium as the system browser: the first
// command logs in through `BROWSER` (connect-browser.mjs clicks Approve and lands on
// connect's loopback listener), the next ones reuse the cached tokens with a `BROWSER`
// that fails, so any second login would fail the test. Then call, whoami, refresh,
// revoke and logout, each checked by its output.

import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { watch } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { promisify } from "node:util";

import { artifacts, checkProfileResult, login, runTest, serverUrl, setting } from "./lib/common.mjs";

const run = promisify(execFile);
const COMMAND_TIMEOUT_MS = 60_000;

runTest(async () => {
  const bin = setting("INTEROP_CONNECT_BIN");
  const mcp = new URL("/mcp", serverUrl()).href;
  const cacheDir = mkdtempSync(join(tmpdir(), "connect-"));
  const chromium = `${process.execPath} ${join(import.meta.dirname, "connect-browser.mjs")}`;
  rmSync(join(artifacts(), "connect-browser.txt"), { force: true });

  async function connect(args, browser = "false") {
    try {
      return await run(bin, ["connect", "--cache-dir", cacheDir, "--login-timeout", "45", mcp, ...args], {
        env: { ...process.env, BROWSER: browser },
        timeout: COMMAND_TIMEOUT_MS,
      });
    } catch (error) {
      throw new Error(`connect ${args.join(" ")} failed: ${error.stderr?.trim().split("\n").at(-1) ?? error.message}`);
    }
  }

  try {
    const tools = await connect(["tools"], chromium);
    // connect goes on as soon as its listener has answered; the browser script writes its
    // outcome a moment later.
    const browserOutcome = (await fileWhenWritten(join(artifacts(), "connect-browser.txt"))).trim();
    if (!browserOutcome.startsWith("ok: ")) throw new Error(`Chromium: ${browserOutcome}`);
    if (!tools.stdout.includes("get_user_profile")) throw new Error(`tools listed: ${tools.stdout}`);

    const call = await connect(["call", "get_user_profile", "{}"]);
    const profile = await checkProfileResult(
      { content: [{ type: "text", text: call.stdout.split("\n")[0] }] },
      login(),
    );
    const whoami = await connect(["whoami"]);
    if (!whoami.stdout.includes("token: scope")) throw new Error(`whoami: ${whoami.stdout}`);
    const refresh = await connect(["refresh"]);
    if (!refresh.stdout.includes("refreshed")) throw new Error(`refresh: ${refresh.stdout}`);
    const revoke = await connect(["revoke"]);
    if (!revoke.stdout.includes("revoked")) throw new Error(`revoke: ${revoke.stdout}`);
    const logout = await connect(["logout"]);
    if (!logout.stdout.includes("not logged in")) throw new Error(`logout after revoke: ${logout.stdout}`);
    return `${browserOutcome.slice(4)}; then tools, call (${profile}), whoami, refresh, revoke, logout from the cache`;
  } finally {
    rmSync(cacheDir, { recursive: true, force: true });
  }
}, 150_000);

/** The contents of `path` once it exists, waiting on directory events (bounded). */
async function fileWhenWritten(path, timeoutMs = 30_000) {
  const dir = dirname(path);
  const signal = AbortSignal.timeout(timeoutMs);
  const events = watch(dir, { signal });
  try {
    if (!existsSync(path)) {
      for await (const event of events) {
        if (event.filename === basename(path) && existsSync(path)) break;
      }
    }
  } catch (error) {
    if (error.name === "AbortError") throw new Error(`the browser script wrote no ${path} within ${timeoutMs / 1000} s`);
    throw error;
  }
  return readFileSync(path, "utf8");
}
