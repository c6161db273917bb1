# Sourced by scripts/test.sh: make sure a Chromium is there for the event viewer's browser tests.
#
# They drive Debian's `chromium` package (/usr/bin/chromium): a browser that Playwright or npm
# would download cannot be fetched on these machines. Installed with apt-get when missing (CI
# runs as root); if that is impossible the run stops here, loudly, instead of skipping tests.
CHROMIUM_BIN="${VISION_EVENTS_CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$CHROMIUM_BIN" ]; then
  echo "[setup] $CHROMIUM_BIN is missing: installing Debian's chromium for the viewer's browser tests" >&2
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  if ! command -v apt-get >/dev/null 2>&1 \
     || ! $SUDO apt-get update -qq \
     || ! DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null; then
    echo "[setup] FAILED to install chromium with apt-get. Install the Debian package 'chromium'" >&2
    echo "[setup] (or point VISION_EVENTS_CHROMIUM at a Chromium binary) and run the tests again." >&2
    return 1 2>/dev/null || exit 1
  fi
  if [ ! -x "$CHROMIUM_BIN" ]; then
    echo "[setup] FAILED: chromium was installed but $CHROMIUM_BIN is still missing" >&2
    return 1 2>/dev/null || exit 1
  fi
fi
export VISION_EVENTS_CHROMIUM="$CHROMIUM_BIN"
