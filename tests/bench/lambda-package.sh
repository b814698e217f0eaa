#!/usr/bin/env bash
# Packages every function as `sam build` does for a deployment (cargo-lambda, arm64,
# release profile: LTO, one codegen unit, stripped) and prints each function's binary
# and zip size; then times each function's init phase (process start to its first poll
# of the Runtime API) with optimised x86_64 builds of the same binaries, through the
# Lambda tests of tests/tests/zerodb/lambda.rs (moto started here). Slow (a release build
# of every function): kept out of CI.
#
#   ./tests/bench/lambda-package.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

VENV=.venv-sam
[ -x "$VENV/bin/sam" ] || { python3 -m venv "$VENV"; "$VENV/bin/pip" install --quiet aws-sam-cli cargo-lambda; }
rustup target add aarch64-unknown-linux-gnu >/dev/null
export PATH="$PWD/$VENV/bin:$PATH"

echo "== sam build (arm64, release)"
started=$SECONDS
sam build --beta-features --build-dir target/sam --cached=false >target/sam-build.log 2>&1 \
  || { tail -40 target/sam-build.log; exit 1; }
echo "sam build took $((SECONDS - started)) s"

echo "== sizes"
python3 - <<'PY'
import io, os, zipfile
root = "target/sam"
for fn in sorted(os.listdir(root)):
    boot = os.path.join(root, fn, "bootstrap")
    if not os.path.isfile(boot):
        continue
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.write(boot, "bootstrap")
    print(f"{fn:28} binary {os.path.getsize(boot) / 1e6:5.1f} MB   zip {len(buf.getvalue()) / 1e6:5.1f} MB")
PY

echo "== init time (x86_64, perf profile, fake Runtime API, moto)"
cargo build --quiet --profile perf -p auth-api -p memory-api -p security-api -p inference-api -p events-worker
VENV_TEST=.venv
[ -x "$VENV_TEST/bin/moto_server" ] || { python3 -m venv "$VENV_TEST"; "$VENV_TEST/bin/pip" install --quiet -r infra/requirements-test.txt; }
PORT=$("$VENV_TEST/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$VENV_TEST/bin/python" tests/moto_server.py -H 127.0.0.1 -p "$PORT" >target/moto-bench.log 2>&1 &
MOTO=$!
trap 'kill $MOTO 2>/dev/null || true' EXIT
sleep 2
for run in 1 2 3; do
  AWS_ENDPOINT_URL="http://127.0.0.1:$PORT" AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 \
    ZERODB_BIN_DIR="$PWD/target/perf" cargo nextest run --no-fail-fast -p zerodb-tests -E 'test(/^lambda::/)' --no-capture 2>&1 \
    | grep -E "init: process start" | sed "s/^/run $run: /"
done
