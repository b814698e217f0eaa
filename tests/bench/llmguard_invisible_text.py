#!/usr/bin/env python3
"""Time llm-guard's InvisibleText input scanner on a UTF-8 plain-text file.

    .venv-bench/bin/python tests/bench/llmguard_invisible_text.py <file> [--repeat N] [--keep-logs]

Set up the interpreter with tests/bench/venv.sh (llm-guard==0.3.16 --no-deps + structlog).
Runs one warm-up scan, then N timed scans (default 5) of InvisibleText().scan(prompt), and
prints ONE line of JSON on stdout:

    {"tool": "llm-guard InvisibleText <version>", "chars": ..., "bytes": ..., "median_ms": ...,
     "min_ms": ..., "mb_per_s": ..., "removed_chars": ..., "is_valid": ...}

mb_per_s = UTF-8 input bytes / 1e6 / median seconds. removed_chars = len(input) - len(output)
in code points.

Import path: llm_guard/__init__.py and llm_guard/input_scanners/__init__.py import every
scanner, i.e. torch, transformers, presidio/spaCy, ... This script registers bare package
objects for `llm_guard` and `llm_guard.input_scanners` (same __path__, without running their
__init__) and then imports the real, unmodified llm_guard/input_scanners/invisible_text.py,
whose own imports are only `unicodedata`, `llm_guard.util` (structlog) and `.base`.

Logging: InvisibleText logs one structlog warning per scan that finds something, carrying the
full list of found characters (one entry per occurrence), or a debug line otherwise. structlog's
default configuration prints everything to stdout, so by default this script configures a
filtering logger that drops everything below CRITICAL (the scanner never logs at CRITICAL).
--keep-logs keeps structlog's default rendering but sends it to stderr, to measure its cost.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import logging
import os
import statistics
import sys
import time
import types


def _bare_package(name: str, path: list[str]) -> None:
    mod = types.ModuleType(name)
    mod.__path__ = path  # type: ignore[attr-defined]
    mod.__package__ = name
    sys.modules[name] = mod


def load_invisible_text():
    spec = importlib.util.find_spec("llm_guard")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("llm_guard is not installed in this interpreter; run tests/bench/venv.sh and use "
                 ".venv-bench/bin/python")
    root = list(spec.submodule_search_locations)
    _bare_package("llm_guard", root)
    _bare_package("llm_guard.input_scanners", [os.path.join(p, "input_scanners") for p in root])
    from llm_guard.input_scanners.invisible_text import InvisibleText

    return InvisibleText


def configure_logging(keep_logs: bool) -> None:
    try:
        import structlog
    except ImportError:
        sys.exit("structlog is not installed in this interpreter; run tests/bench/venv.sh and use "
                 ".venv-bench/bin/python")

    if keep_logs:
        # structlog's defaults (dev ConsoleRenderer, no level filter), but on stderr.
        structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    else:
        structlog.configure(
            wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL),
            logger_factory=structlog.PrintLoggerFactory(sys.stderr),
            cache_logger_on_first_use=True,
        )


def main() -> int:
    ap = argparse.ArgumentParser(description="Benchmark llm-guard InvisibleText on a UTF-8 file.")
    ap.add_argument("file")
    ap.add_argument("--repeat", type=int, default=5, help="timed scans after one warm-up (default 5)")
    ap.add_argument("--keep-logs", action="store_true",
                    help="do not silence llm-guard's structlog output (sent to stderr)")
    args = ap.parse_args()
    if args.repeat < 1:
        ap.error("--repeat must be >= 1")

    configure_logging(args.keep_logs)
    InvisibleText = load_invisible_text()
    version = importlib.metadata.version("llm-guard")

    with open(args.file, "rb") as f:
        raw = f.read()
    prompt = raw.decode("utf-8")

    scanner = InvisibleText()
    out, is_valid, _score = scanner.scan(prompt)  # warm-up
    times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        out, is_valid, _score = scanner.scan(prompt)
        times.append(time.perf_counter() - t0)

    median_s = statistics.median(times)
    result = {
        "tool": f"llm-guard InvisibleText {version}",
        "chars": len(prompt),
        "bytes": len(raw),
        "median_ms": round(median_s * 1e3, 3),
        "min_ms": round(min(times) * 1e3, 3),
        "mb_per_s": round(len(raw) / 1e6 / median_s, 3) if median_s > 0 else None,
        "removed_chars": len(prompt) - len(out),
        "is_valid": bool(is_valid),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
