# Sourced by scripts/demo.sh and scripts/test.sh: find or build the virtual environment.
#
# The environment lives outside the clone, keyed by a hash of pyproject.toml, so repeated runs
# (and CI on the same machine) reuse the ~7 GB inference install. When pyproject.toml changes,
# the hash changes and a new environment is built from nothing.
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON_BIN="${PYTHON:-python3}"
VENV_ROOT="${VISION_EVENTS_VENV_ROOT:-$HOME/.cache/vision-events-blocks}"
DEPS_HASH="$( (cat "$REPO_ROOT/pyproject.toml"; "$PYTHON_BIN" -c 'import sys; print(sys.version)') | sha256sum | cut -c1-16)"
VENV_DIR="$VENV_ROOT/venv-$DEPS_HASH"

if [ ! -f "$VENV_DIR/.complete" ]; then
  echo "[setup] building virtual environment $VENV_DIR (first run: a few minutes)" >&2
  rm -rf "$VENV_DIR"
  mkdir -p "$VENV_ROOT"
  "$PYTHON_BIN" -m venv "$VENV_DIR"
  "$VENV_DIR/bin/python" -m pip install --quiet --upgrade pip setuptools wheel
  # The CPU build of torch first, so inference's dependency on torch does not pull CUDA wheels.
  "$VENV_DIR/bin/python" -m pip install --quiet "torch==2.13.0" || true
  if ! "$VENV_DIR/bin/python" -m pip install --quiet -e "$REPO_ROOT[dev]" 2>"$VENV_DIR.pip.log"; then
    grep -v "^WARNING: Location" "$VENV_DIR.pip.log" | tail -40 >&2
    echo "[setup] installing dependencies failed; see $VENV_DIR.pip.log" >&2
    return 1 2>/dev/null || exit 1
  fi
  touch "$VENV_DIR/.complete"
fi
# Point the environment at *this* clone (the clone's path may differ between runs).
if [ "$(cat "$VENV_DIR/.repo-root" 2>/dev/null)" != "$REPO_ROOT" ]; then
  "$VENV_DIR/bin/python" -m pip install --quiet --no-deps --no-build-isolation -e "$REPO_ROOT" >/dev/null 2>&1
  echo "$REPO_ROOT" > "$VENV_DIR/.repo-root"
fi
export PATH="$VENV_DIR/bin:$PATH"
export VIRTUAL_ENV="$VENV_DIR"
# Closed, offline inference: no version check, no usage telemetry.
export DISABLE_VERSION_CHECK=true OFFLINE_MODE=true METRICS_ENABLED=false
