#!/usr/bin/env bash
# Runs zerodb-local with recall by meaning: fetches the all-MiniLM-L6-v2 model into the
# cache on first use (see infra/fetch-model.sh), then starts the server. Arguments go to
# zerodb-local (e.g. --addr, --data-dir). Without python3 or network, the server still
# starts, with the lexical fallback embedder and a warning.
#
#   ./infra/run.sh [zerodb-local args]        debug build, quick to compile
#   PROFILE=perf ./infra/run.sh               optimised build (the benchmarks use this)
set -euo pipefail
cd "$(dirname "$0")/.."

if dir="$(./infra/fetch-model.sh)"; then
  export ZERODB_MINILM_DIR="$dir"
else
  echo "could not fetch the embedding model; recall will match words, not meaning" >&2
fi
exec cargo run --quiet --profile "${PROFILE:-dev}" -p zerodb-local -- "$@"
