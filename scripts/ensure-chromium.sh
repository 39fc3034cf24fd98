#!/usr/bin/env bash
# Install Debian's Chromium and ChromeDriver for the browser tests when they
# are missing. Without root or apt-get the browser tests skip with the reason.
set -euo pipefail

if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
    exit 0
fi

if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null; then
    echo "chromium or chromedriver is missing and cannot be installed here" \
         "(needs root and apt-get); the browser tests will be skipped" >&2
    exit 0
fi

echo "installing Debian packages chromium and chromium-driver" >&2
apt-get update -q >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver >/dev/null
