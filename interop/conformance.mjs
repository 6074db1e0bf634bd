// The official MCP conformance suite's server scenarios against the reference server.
// The runner sends no credentials, so this script logs in first (the TypeScript SDK's
// auth flow and the scripted walk), then points the runner at a loopback proxy that
// adds the bearer token. The runner's own expected-failures file decides the outcome:
// a failure not listed fails, and so does a listed scenario that passes (stale).

import { spawn } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { artifacts, killOnTimeout, runTest, serverUrl } from "./lib/common.mjs";
import { finishLogin, startLogin } from "./lib/provider.mjs";
import { startTokenProxy } from "./lib/proxy.mjs";
import { walkAuthorization } from "./lib/walk.mjs";

const EXPECTED_FAILURES = join(dirname(fileURLToPath(import.meta.url)), "conformance-expected-failures.yml");
// The suite runs about thirty scenarios one after another; each is quick, but a
// server that hangs must not hold the run for long.
const SUITE_TIMEOUT_MS = 150_000;

const runner = join(
  dirname(createRequire(import.meta.url).resolve("@modelcontextprotocol/conformance/package.json")),
  "dist/index.js",
);

runTest(async () => {
  checkReasons(readFileSync(EXPECTED_FAILURES, "utf8"));
  const token = await logIn(new URL("/mcp", serverUrl()));
  const proxy = await startTokenProxy(serverUrl(), token);
  try {
    const args = [runner, "server", "--url", `${proxy.url}/mcp`, "--expected-failures", EXPECTED_FAILURES];
    // Each run writes its own timestamped folders; only the latest run's are kept.
    const results = join(artifacts(), "conformance");
    rmSync(results, { recursive: true, force: true });
    args.push("-o", results, ...process.argv.slice(2));
    const { code, output } = await run(args);
    const passed = output.match(/^✓ /gm)?.length ?? 0;
    const failed = output.match(/^✗ /gm)?.length ?? 0;
    const counts = `${passed} scenarios passed, ${failed} failed`;
    if (code !== 0) {
      throw new Error(`the suite exited ${code} (${counts}): ${baselineProblems(output) || lastLines(output)}`);
    }
    return `${passed} scenarios passed; ${failed} failed, all listed with a reason in ${basename(EXPECTED_FAILURES)}`;
  } finally {
    proxy.close();
  }
}, SUITE_TIMEOUT_MS + 30_000);

/** A token for `resource`, obtained the way the TypeScript SDK's client does. */
async function logIn(resource) {
  const provider = await startLogin(resource, {
    redirectUrl: "http://127.0.0.1:33420/callback",
    clientName: "Interop: official conformance suite",
  });
  const redirect = await walkAuthorization(provider.authorizationUrl, { redirectUri: provider.redirectUrl });
  return (await finishLogin(provider, resource, redirect, serverUrl())).access_token;
}

/**
 * The file is the runner's YAML (`server:` then `- scenario` lines); ours also gives
 * every entry a reason as a comment on its line.
 */
function checkReasons(yaml) {
  const entries = yaml.split("\n").filter((line) => /^\s*-\s/.test(line));
  const bare = entries.filter((line) => !/^\s*-\s*[\w-]+\s+#\s*\S/.test(line));
  if (bare.length > 0) {
    throw new Error(`expected failures without a reason ("- scenario  # why"): ${bare.map((l) => l.trim())}`);
  }
}

function run(args) {
  return new Promise((resolve, reject) => {
    const child = killOnTimeout(spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] }));
    let output = "";
    const keep = (chunk) => {
      output += chunk;
      process.stderr.write(chunk);
    };
    child.stdout.on("data", keep);
    child.stderr.on("data", keep);
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`the suite did not finish within ${SUITE_TIMEOUT_MS / 1000} s`));
    }, SUITE_TIMEOUT_MS);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

/** The runner's verdict on the baseline, as "unexpected failures: a, b; stale entries: c". */
function baselineProblems(output) {
  const headings = { "Unexpected failures (": "unexpected failures", "Stale baseline entries": "stale entries" };
  const sections = [];
  let section;
  for (const line of output.replace(/\x1b\[[0-9;]*m/g, "").split("\n")) {
    const heading = Object.keys(headings).find((start) => line.startsWith(start));
    if (heading) {
      section = { name: headings[heading], items: [] };
      sections.push(section);
    } else if (section && /^\s+[✗✓]\s/.test(line)) {
      section.items.push(line.trim().slice(2));
    } else {
      section = undefined;
    }
  }
  return sections.map(({ name, items }) => `${name}: ${items.join(", ")}`).join("; ");
}

function lastLines(text) {
  return text.trim().split("\n").slice(-3).join("; ");
}
