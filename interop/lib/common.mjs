// Shared pieces of the interop scripts: the environment `cargo xtask interop` sets,
// the expected profile, and a runner that turns a test into one line of outcome.

import { isDeepStrictEqual } from "node:util";

// Every HTTP request a script makes itself is bounded, so a hung server fails the
// test instead of hanging the run.
export const REQUEST_TIMEOUT_MS = 10_000;

export function setting(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (run the tests with \`cargo xtask interop\`)`);
  return value;
}

/** The reference server's base URL, for example http://127.0.0.1:40123. */
export const serverUrl = () => setting("INTEROP_SERVER_URL");
/** The mock GitHub's base URL. */
export const mockUrl = () => setting("INTEROP_MOCK_GITHUB_URL");
/** The mock user this test logs in as, so each client proves it gets its own user's profile. */
export const login = () => process.env.INTEROP_LOGIN || "octocat";
/** Where screenshots and other artifacts go. */
export const artifacts = () => setting("INTEROP_ARTIFACTS");

export function fetchBounded(url, init = {}) {
  return fetch(url, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS), ...init });
}

/** The profile the mock GitHub holds for `user`: what `get_user_profile` must return. */
export async function expectedProfile(user) {
  const response = await fetchBounded(new URL("/_mock/users", mockUrl()));
  if (!response.ok) throw new Error(`GET /_mock/users answered ${response.status}`);
  const profile = (await response.json()).find((candidate) => candidate.login === user);
  if (!profile) throw new Error(`the mock GitHub has no user ${user}`);
  return profile;
}

/**
 * Checks a `tools/call` result of `get_user_profile` against the mock's profile of
 * `user` and returns a short description of what matched.
 */
export async function checkProfileResult(result, user) {
  if (result?.isError) throw new Error(`the tool failed: ${JSON.stringify(result.content)}`);
  const text = result?.content?.find((block) => block.type === "text")?.text;
  if (typeof text !== "string") throw new Error(`no text content in ${JSON.stringify(result)}`);
  const profile = JSON.parse(text);
  const expected = await expectedProfile(user);
  if (!isDeepStrictEqual(profile, expected)) {
    throw new Error(
      `the tool returned ${profile.login} (id ${profile.id}), expected ${user}'s profile (id ${expected.id})`,
    );
  }
  if (result.structuredContent && !isDeepStrictEqual(result.structuredContent, expected)) {
    throw new Error("structuredContent differs from the text content");
  }
  return `${user}'s profile (id ${expected.id})`;
}

// Child processes a test started, killed if the test times out: exiting alone would
// leave them running.
const children = new Set();

export function killOnTimeout(child) {
  children.add(child);
  child.on("exit", () => children.delete(child));
  return child;
}

/**
 * Runs one test: prints its one-line summary on stdout and exits 0, or prints the
 * error on stderr and exits 1. The whole test is bounded by `timeoutMs`.
 */
export function runTest(test, timeoutMs = 90_000) {
  const timer = setTimeout(() => {
    console.error(`error: timed out after ${timeoutMs / 1000} s`);
    for (const child of children) child.kill("SIGKILL");
    process.exit(1);
  }, timeoutMs);
  test().then(
    (summary) => {
      clearTimeout(timer);
      console.log(summary);
      // Open keep-alive sockets or child processes must not keep a finished test alive.
      process.exit(0);
    },
    (error) => {
      clearTimeout(timer);
      if (process.env.INTEROP_DEBUG) console.error(error);
      console.error(`error: ${oneLine(error)}`);
      process.exit(1);
    },
  );
}

export function oneLine(error) {
  const message = error instanceof Error ? error.message : String(error);
  const cause = error?.cause ? ` (${error.cause.message ?? error.cause})` : "";
  return `${message}${cause}`.replace(/\s+/g, " ").trim();
}
