// Launching Debian's Chromium headless on a machine without a network.

import { execFileSync } from "node:child_process";

// Without these, Chromium reaches for update, sync and QUIC endpoints on a network
// it does not have.
export const CHROMIUM_FLAGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

export function chromiumPath() {
  try {
    return execFileSync("which", ["chromium"], { encoding: "utf8" }).trim();
  } catch {
    throw new Error("chromium is not installed: apt-get install chromium");
  }
}
