#!/usr/bin/env bash
# Set up (first run only) and run the whole test suite. Extra arguments go to pytest,
# e.g. `--long` for the long soak/crash forms.
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh" || exit 1
source "$(dirname "${BASH_SOURCE[0]}")/_chromium.sh" || exit 1
cd "$REPO_ROOT"
exec python -m pytest -q -p no:cacheprovider "$@"
