#!/usr/bin/env bash
# Set up (first run only) and run the demo: local server + example workflows + summary.
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh" || exit 1
cd "$REPO_ROOT"
exec vision-events demo "$@"
