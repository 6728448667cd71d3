#!/usr/bin/env bash
# Provision headless Chromium and its WebDriver for the web UI's browser test
# (tests/integration/test_ui_browser.py). Idempotent: installs Debian's chromium and
# chromium-driver only if either is missing (as root, or through sudo when run as another user).
set -euo pipefail
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
    echo "[browser.sh] installing chromium and chromium-driver" >&2
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO=sudo
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
fi
chromedriver --version >&2
