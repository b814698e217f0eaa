#!/usr/bin/env bash
# Creates .venv-vectors in the repo root for tests/bench/vectors_compare.py: numpy, and
# the two embedded vector stores it compares against, at pinned versions.
#
#   tests/bench/vectors-venv.sh            # idempotent; one line when up to date
#   PYTHON=python3.12 tests/bench/vectors-venv.sh
#
# - qdrant-client in local mode (`QdrantClient(path=...)` / `":memory:"`): Qdrant's own
#   Python client storing points itself, searched by an exact numpy scan (no HNSW: that is
#   the server's); its optional fastembed stack is not installed.
# - chromadb: the embedded Chroma (a Rust core since 1.0) with an HNSW index.
# Their own dependencies are resolved by pip (chromadb's are many: onnxruntime,
# tokenizers, grpc, ...); only the three packages below are pinned.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="$ROOT/.venv-vectors"
PYTHON="${PYTHON:-python3.11}"

PINS=(
  "numpy==2.4.6"
  "qdrant-client==1.20.0"
  "chromadb==1.5.9"
)

have() {
  [ -x "$VENV/bin/python" ] || return 1
  "$VENV/bin/python" - "${PINS[@]}" <<'EOF' >/dev/null 2>&1 || return 1
import sys
from importlib.metadata import version
for pin in sys.argv[1:]:
    name, want = pin.split("==")
    assert version(name) == want, (name, version(name), want)
import numpy, qdrant_client, chromadb  # noqa: F401
EOF
}

if have; then
  echo "vectors-venv: $VENV up to date (${PINS[*]})"
  exit 0
fi

if ! command -v "$PYTHON" >/dev/null 2>&1; then
  echo "vectors-venv: $PYTHON not found (set PYTHON=... to a Python 3.10-3.12)" >&2
  exit 1
fi

if [ -d "$VENV" ]; then
  echo "vectors-venv: $VENV exists but does not match the pins; recreating" >&2
  rm -rf "$VENV"
fi

"$PYTHON" -m venv "$VENV"
# Never committed (Python 3.13+ writes this itself).
echo '*' > "$VENV/.gitignore"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${PINS[@]}"

if ! have; then
  echo "vectors-venv: installed environment does not match the pins:" >&2
  "$VENV/bin/python" -m pip freeze >&2
  exit 1
fi
echo "vectors-venv: created $VENV (${PINS[*]})"
