#!/usr/bin/env bash
# Creates .venv-bench in the repo root with the minimum needed to run llm-guard's
# InvisibleText input scanner (tests/bench/llmguard_invisible_text.py), and nothing else.
#
#   tests/bench/venv.sh            # idempotent; silent apart from one line when up to date
#   PYTHON=python3.11 tests/bench/venv.sh
#
# Why --no-deps: llm-guard's declared dependencies pull torch, transformers, presidio
# (spaCy), nltk, tiktoken, ... (several GB). InvisibleText itself only needs the stdlib
# `unicodedata` plus `structlog` (via llm_guard.util.get_logger). The package __init__
# files (llm_guard/__init__.py, llm_guard/input_scanners/__init__.py) import every
# scanner and therefore the heavy stack; the bench script bypasses them and imports the
# unmodified llm_guard/input_scanners/invisible_text.py module directly.
#
# Interpreter: llm-guard 0.3.16 requires Python >=3.10,<3.13. Use 3.11 so results are
# comparable: InvisibleText strips category Cn (unassigned), which depends on the
# interpreter's Unicode database (3.11 -> Unicode 14.0.0, 3.12 -> 15.0.0).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="$ROOT/.venv-bench"
PYTHON="${PYTHON:-python3.11}"

# Exact pins (also named in the docstring of tests/bench/llmguard_invisible_text.py).
PINS=(
  "llm-guard==0.3.16"
  "structlog==26.1.0"
)

wanted="$(printf '%s\n' "${PINS[@]}" | tr 'A-Z_' 'a-z-' | sort)"

have() {
  [ -x "$VENV/bin/python" ] || return 1
  local got
  got="$("$VENV/bin/python" -m pip freeze --disable-pip-version-check 2>/dev/null \
    | tr 'A-Z_' 'a-z-' | sort)" || return 1
  [ "$got" = "$wanted" ] || return 1
  "$VENV/bin/python" - <<'EOF' >/dev/null 2>&1 || return 1
import sys
assert (3, 10) <= sys.version_info[:2] < (3, 13)
import structlog  # noqa: F401
import importlib.util
assert importlib.util.find_spec("llm_guard") is not None
EOF
}

if have; then
  echo "bench-venv: $VENV up to date (${PINS[*]})"
  exit 0
fi

if ! command -v "$PYTHON" >/dev/null 2>&1; then
  echo "bench-venv: $PYTHON not found (set PYTHON=... to a Python 3.10-3.12)" >&2
  exit 1
fi

if [ -d "$VENV" ]; then
  echo "bench-venv: $VENV exists but does not match the pins; recreating" >&2
  rm -rf "$VENV"
fi

"$PYTHON" -m venv "$VENV"
# llm-guard without its (huge) declared dependencies, then structlog alone.
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps "${PINS[@]}"

if ! have; then
  echo "bench-venv: installed environment does not match the pins:" >&2
  "$VENV/bin/python" -m pip freeze >&2
  exit 1
fi
echo "bench-venv: created $VENV (${PINS[*]})"
