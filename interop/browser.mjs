// A real browser on the consent page: `node browser.mjs mouse|keyboard|no-js`.
// Headless Chromium (Debian's, driven by playwright-core) opens the authorization URL
// that the TypeScript SDK's login produced, approves, passes through the mock GitHub,
// and is caught at the client's redirect URI. The code is then exchanged and the tool
// called, so the browser's login is proven to work end to end.
//   mouse     clicks Approve and keeps a screenshot of the page (consent.png)
//   keyboard  reaches Approve with Tab alone and presses Enter
//   no-js     clicks Approve with JavaScript disabled

import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

import { chromium } from "playwright-core";

import { CHROMIUM_FLAGS, chromiumPath } from "./lib/chromium.mjs";
import { artifacts, checkProfileResult, runTest, serverUrl } from "./lib/common.mjs";
import { callProfileTool, finishLogin, startLogin } from "./lib/provider.mjs";

// Nothing listens here: the browser's request for it is intercepted.
const REDIRECT_URL = "http://127.0.0.1:33421/callback";
const STEP_TIMEOUT_MS = 15_000;
const APPROVE = 'button[name="action"][value="approve"]';

const modes = {
  async mouse(page) {
    await page.screenshot({ path: join(artifacts(), "consent.png"), fullPage: true });
    await page.click(APPROVE);
    return "clicked Approve (screenshot in consent.png)";
  },

  async keyboard(page) {
    // Approve has no autofocus, so that a keystroke meant for another window cannot
    // approve by accident (keyjacking); Tab alone must reach it from the top of the page.
    const stops = [await focused(page)];
    if (stops[0] === "approve") throw new Error("the page opens with focus on Approve (autofocus)");
    for (let presses = 1; presses <= 10; presses += 1) {
      await page.keyboard.press("Tab");
      stops.push(await focused(page));
      if (stops.at(-1) === "approve") {
        await page.screenshot({ path: join(artifacts(), "consent-keyboard.png") });
        await page.keyboard.press("Enter");
        return `focus ${stops.join(" -Tab-> ")}, then Enter`;
      }
    }
    throw new Error(`Tab never reached Approve: ${stops.join(", ")}`);
  },

  async "no-js"(page) {
    await page.click(APPROVE);
    return "clicked Approve with JavaScript disabled";
  },
};

runTest(async () => {
  const mode = process.argv[2];
  if (!modes[mode]) throw new Error(`usage: browser.mjs ${Object.keys(modes).join("|")}`);
  const resource = new URL("/mcp", serverUrl());
  const provider = await startLogin(resource, {
    redirectUrl: REDIRECT_URL,
    clientName: `Interop: Chromium (${mode})`,
  });

  const browser = await chromium.launch({ executablePath: chromiumPath(), args: CHROMIUM_FLAGS, timeout: STEP_TIMEOUT_MS });
  try {
    const context = await browser.newContext({ javaScriptEnabled: mode !== "no-js" });
    context.setDefaultTimeout(STEP_TIMEOUT_MS);
    // The final navigation to the client is caught, as the client's listener would.
    let redirect;
    let arrive;
    const arrived = new Promise((resolve) => (arrive = resolve));
    await context.route(`${REDIRECT_URL}**`, (route) => {
      redirect = new URL(route.request().url());
      arrive();
      return route.fulfill({ status: 200, contentType: "text/plain", body: "You can close this window." });
    });
    const page = await context.newPage();
    // A console error on our pages is a defect a person would not notice (a style
    // blocked by the page's own CSP, say), so it fails the test.
    const consoleErrors = [];
    page.on("console", (message) => message.type() === "error" && consoleErrors.push(message.text()));
    page.on("pageerror", (error) => consoleErrors.push(error.message));
    const consent = await page.goto(provider.authorizationUrl.href);
    if (consent.status() !== 200) throw new Error(`the authorize URL answered ${consent.status()}`);
    await checkConsentPage(page, context);

    const action = await modes[mode](page);
    await Promise.race([arrived, sleep(STEP_TIMEOUT_MS, undefined, { ref: false })]);
    if (!redirect) throw new Error(`${action}, but the browser stayed at ${page.url()}: ${await visibleText(page)}`);

    if (consoleErrors.length > 0) throw new Error(`console errors: ${consoleErrors.join("; ")}`);
    await finishLogin(provider, resource, redirect, serverUrl());
    const profile = await checkProfileResult(await callProfileTool(provider, resource), "octocat");
    return `${action}; the code was exchanged and the tool returned ${profile}`;
  } finally {
    await browser.close();
  }
}, 60_000);

/** The page a person sees: the right title, both buttons, and the consent cookie kept. */
async function checkConsentPage(page, context) {
  const title = await page.title();
  if (!/authoriz/i.test(title)) throw new Error(`the consent page is titled "${title}"`);
  for (const value of ["approve", "deny"]) {
    const button = page.locator(`button[name="action"][value="${value}"]`);
    if (!(await button.isVisible())) throw new Error(`no visible ${value} button`);
  }
  const cookies = await context.cookies(serverUrl());
  if (!cookies.some((cookie) => cookie.name === "__Host-mcp-consent")) {
    throw new Error(
      `Chromium did not keep the consent cookie set over ${new URL(serverUrl()).protocol}// ` +
        `(it holds: ${cookies.map((cookie) => cookie.name).join(", ") || "no cookies"})`,
    );
  }
}

async function visibleText(page) {
  const text = await page.locator("body").innerText().catch(() => "");
  return text.replace(/\s+/g, " ").trim().slice(0, 200);
}

/** What has the keyboard focus: a button's value, or the element's tag name. */
function focused(page) {
  return page.evaluate(() => {
    const element = document.activeElement;
    return element?.value || element?.tagName.toLowerCase() || "nothing";
  });
}
