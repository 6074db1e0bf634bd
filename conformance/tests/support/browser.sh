#!/bin/sh
# The "system browser" of the `connect` tests (`BROWSER` points here): it hands the
# authorization URL to the test through a FIFO, and the test's scripted browser walks the
# login and delivers the redirect to connect's loopback listener, as a real browser would.
# `cargo xtask interop` runs the same login in headless Chromium (interop/connect.mjs).
set -eu
printf '%s\n' "$1" > "$CONNECT_TEST_BROWSER_FIFO"
