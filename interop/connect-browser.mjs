// The system browser of the `connect` interop test: `mcp-auth-conformance connect` runs
// `BROWSER` with the authorization URL, which is this script. Headless Chromium (Debian's,
// driven by playwright-core) opens the URL, clicks Approve on the consent page, passes
// through the mock GitHub, and lands on connect's own loopback redirect listener, whose
// page must say the login worked. connect starts this script detached, so the outcome
// goes to `connect-browser.txt` in the artifacts folder for connect.mjs to read.

import { renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";

import { chromium } from "playwright-core";

import { artifacts } from "./lib/common.mjs";
import { CHROMIUM_FLAGS, chromiumPath } from "./lib/chromium.mjs";

const STEP_TIMEOUT_MS = 15_000;
const APPROVE = 'button[name="action"][value="approve"]';
const outcomeFile = () => join(artifacts(), "connect-browser.txt");

/** Writes the outcome whole (a temporary file, then a rename), so its reader never sees half. */
function report(line) {
  const partial = `${outcomeFile()}.partial`;
  writeFileSync(partial, `${line}\n`);
  renameSync(partial, outcomeFile());
}

async function main() {
  const authorizationUrl = new URL(process.argv[2]);
  const redirectUri = new URL(authorizationUrl.searchParams.get("redirect_uri"));
  const browser = await chromium.launch({
    executablePath: chromiumPath(),
    args: CHROMIUM_FLAGS,
    timeout: STEP_TIMEOUT_MS,
  });
  try {
    const page = await browser.newPage();
    page.setDefaultTimeout(STEP_TIMEOUT_MS);
    const consent = await page.goto(authorizationUrl.href);
    if (consent.status() !== 200) throw new Error(`the authorize URL answered ${consent.status()}`);
    await page.click(APPROVE);
    // The listener answers the redirect itself; nothing is intercepted here.
    await page.waitForURL((url) => url.origin === redirectUri.origin && url.pathname === redirectUri.pathname);
    const text = await page.locator("body").innerText();
    await page.screenshot({ path: join(artifacts(), "connect-callback.png") });
    if (!/close this tab/i.test(text)) throw new Error(`connect's listener answered: ${text.trim().slice(0, 200)}`);
    return `clicked Approve; connect's listener answered "${text.replace(/\s+/g, " ").trim().slice(0, 80)}"`;
  } finally {
    await browser.close();
  }
}

main().then(
  (summary) => report(`ok: ${summary}`),
  (error) => {
    report(`error: ${error.message}`);
    process.exit(1);
  },
);
