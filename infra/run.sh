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
profile="${PROFILE:-dev}"
dir="$profile"; [ "$profile" = dev ] && dir=debug
quiet=--quiet
if [ ! -x "target/$dir/zerodb-local" ]; then
  # The first build compiles the AWS SDK, candle and the rest: about 10 minutes on two
  # cores (debug; the perf profile takes longer). Show cargo's progress for it.
  echo "first build of zerodb-local ($profile profile): several minutes; later starts take seconds" >&2
  quiet=
fi
exec cargo run $quiet --profile "$profile" -p zerodb-local -- "$@"
