#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs its Python tools into .venv, starts
# moto's server (DynamoDB, S3, SQS) for the AWS adapter tests, runs every Rust test on
# both storage backends, drives the real zerodb-local binary from Python, and lints the
# SAM template. Stops moto on exit, pass or fail.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet --disable-pip-version-check -r infra/requirements-test.txt

mkdir -p target
PORT=$("$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$VENV/bin/moto_server" -H 127.0.0.1 -p "$PORT" > target/moto.log 2>&1 &
MOTO_PID=$!
trap 'kill "$MOTO_PID" 2>/dev/null || true' EXIT

export AWS_ENDPOINT_URL="http://127.0.0.1:$PORT"
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
# Wait (bounded) until moto answers.
"$VENV/bin/python" - <<PY
import time, urllib.request
deadline = time.time() + 60
while True:
    try:
        urllib.request.urlopen("$AWS_ENDPOINT_URL/moto-api/", timeout=1)
        break
    except Exception:
        if time.time() > deadline:
            raise SystemExit("moto did not start; see target/moto.log")
        time.sleep(0.2)
PY

echo "== cargo test (embedded and AWS-on-moto backends)"
cargo test --workspace --no-fail-fast

echo "== black-box tests against the zerodb-local binary"
cargo build --quiet -p zerodb-local
ZERODB_LOCAL_BIN="$PWD/target/debug/zerodb-local" "$VENV/bin/pytest" -q tests/python

echo "== cfn-lint template.yaml"
"$VENV/bin/cfn-lint" template.yaml
echo "all tests passed"
