#!/usr/bin/env bash
# Quarantine throughput on 500,000-character inputs, side by side in one run with
# llm-guard's InvisibleText scanner on the same plain-text file.
#
#   ./tests/bench/quarantine.sh [REPEAT]
#
# Builds the bench example with the `perf` profile, sets up .venv-bench (llm-guard without
# its model stack: see tests/bench/venv.sh), generates the input with tests/bench/gen_plain.py.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
REPEAT="${1:-20}"
OUT="$ROOT/target/bench-quarantine"
mkdir -p "$OUT"

"$ROOT/tests/bench/venv.sh"
python3 tests/bench/gen_plain.py "$OUT/plain500k.txt" --clean-out "$OUT/plain500k.clean.txt" 2>/dev/null
cargo build -q --profile perf -p zerodb-quarantine --example bench_quarantine

echo "== zerodb quarantine (Rust, this machine)"
target/perf/examples/bench_quarantine --plain "$OUT/plain500k.txt" --expect "$OUT/plain500k.clean.txt" --repeat "$REPEAT" | tee "$OUT/rust.txt"
echo "== llm-guard InvisibleText on the same plain-text file"
.venv-bench/bin/python tests/bench/llmguard_invisible_text.py "$OUT/plain500k.txt" --repeat 5 | tee "$OUT/llmguard.json"

python3 - "$OUT/rust.txt" "$OUT/llmguard.json" <<'PY'
import json, sys
rust = {l[:21].strip(): l.split() for l in open(sys.argv[1]) if l.startswith("plain text (ocr)")}
ours_ms = float(rust["plain text (ocr)"][-5])
theirs = json.load(open(sys.argv[2]))
print(f"== same input: zerodb {ours_ms:.1f} ms (all six threat kinds) vs llm-guard "
      f"{theirs['median_ms']:.1f} ms (invisible text only): {theirs['median_ms'] / ours_ms:.0f}x")
PY
