"""Qdrant's and Chroma's embedded modes on the data of `bench-vectors`, for its table.

Loads `target/bench-vectors/n<N>/{vectors,queries}.npy` (written by
`cargo run --profile perf -p zerodb-tests --bin bench-vectors`), then for each engine:
inserts every vector in batches of 500 with the same metadata as the Rust benchmark
(`{"topic": t, "lang": ...}`), and measures insert throughput, resident memory added,
query p50/p95 at top 10 (200 queries, after 10 warm-up ones), the same with the filter
`lang = "de"` (a quarter of the vectors), and recall@10 against an exact numpy search
(also timed, as the baseline). A result tied with the 10th to f32 rounding counts as
found, as in the Rust benchmark.

Engines (pinned in tests/bench/vectors-venv.sh):
- qdrant: `qdrant_client.QdrantClient(path=...)`, the client's local mode, persisted to a
  directory (SQLite); an exact scan in numpy, the HNSW index being the Qdrant server's.
- qdrant-memory: the same with `QdrantClient(":memory:")` (nothing persisted).
- chroma: `chromadb.PersistentClient(path=...)`, embedded Chroma (Rust core, HNSW,
  SQLite), cosine space.

Run:
    tests/bench/vectors-venv.sh
    RAYON_NUM_THREADS=2 cargo run --profile perf -p zerodb-tests --bin bench-vectors 10000 100000
    .venv-vectors/bin/python tests/bench/vectors_compare.py 10000 100000 [--engines qdrant,qdrant-memory,chroma]
        [--insert-budget SECONDS]

An engine whose inserts run past --insert-budget (default 900 s) is stopped there: its
measured rate and the build time it implies are printed instead of query figures. A
query phase stops after --query-budget seconds (default 300), its figures then over the
queries it ran (the count is printed).
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "target" / "bench-vectors"
LANGS = ["en", "de", "fr", "es"]
BATCH = 500
WARMUP = 10
K = 10


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


def pcts(times: list[float]) -> tuple[float, float]:
    t = sorted(times)

    def at(p: float) -> float:
        i = min(max(int(np.ceil(len(t) * p)), 1), len(t)) - 1
        return t[i] * 1e3

    return at(0.50), at(0.95)


class Exact:
    """Exact cosine top 10 by numpy (the vectors are unit length: 1 - dot)."""

    def __init__(self, vectors: np.ndarray):
        self.vectors = vectors
        self.lang = np.arange(len(vectors)) % len(LANGS)

    def top(self, q: np.ndarray, lang: int | None = None) -> tuple[np.ndarray, float]:
        d = 1.0 - self.vectors @ q
        if lang is not None:
            d = np.where(self.lang == lang, d, np.inf)
        idx = np.argpartition(d, K)[:K]
        idx = idx[np.argsort(d[idx])]
        return idx, float(d[idx[-1]])

    def recall(self, got: list[int], q: np.ndarray, truth: np.ndarray, tenth: float) -> int:
        truth = set(int(i) for i in truth)
        hits = 0
        for i in got:
            if i in truth or 1.0 - float(self.vectors[i] @ q) <= tenth + 1e-6:
                hits += 1
        return hits


def metadata(i: int, topics: np.ndarray) -> dict:
    return {"topic": int(topics[i]), "lang": LANGS[i % len(LANGS)]}


class Qdrant:
    name = "qdrant-client local (path)"
    in_memory = False

    def __init__(self, path: str):
        from qdrant_client import QdrantClient, models

        self.models = models
        self.client = QdrantClient(location=":memory:") if self.in_memory else QdrantClient(path=path)
        self.client.create_collection(
            "bench",
            vectors_config=models.VectorParams(size=384, distance=models.Distance.COSINE),
        )

    def insert(self, start: int, vectors: np.ndarray, topics: np.ndarray) -> None:
        n = len(vectors)
        self.client.upsert(
            "bench",
            points=self.models.Batch(
                ids=list(range(start, start + n)),
                vectors=vectors.tolist(),
                payloads=[metadata(start + i, topics) for i in range(n)],
            ),
            wait=True,
        )

    def query(self, q: np.ndarray, lang: str | None) -> list[int]:
        m = self.models
        flt = None
        if lang is not None:
            flt = m.Filter(must=[m.FieldCondition(key="lang", match=m.MatchValue(value=lang))])
        res = self.client.query_points("bench", query=q.tolist(), limit=K, query_filter=flt)
        return [int(p.id) for p in res.points]

    def close(self) -> None:
        self.client.close()


class QdrantMemory(Qdrant):
    name = "qdrant-client local (:memory:)"
    in_memory = True


class Chroma:
    name = "chromadb embedded"

    def __init__(self, path: str):
        import chromadb

        self.client = chromadb.PersistentClient(path=path)
        self.col = self.client.create_collection(
            "bench", configuration={"hnsw": {"space": "cosine"}}
        )

    def insert(self, start: int, vectors: np.ndarray, topics: np.ndarray) -> None:
        n = len(vectors)
        self.col.add(
            ids=[str(start + i) for i in range(n)],
            embeddings=vectors,
            metadatas=[metadata(start + i, topics) for i in range(n)],
        )

    def query(self, q: np.ndarray, lang: str | None) -> list[int]:
        res = self.col.query(
            query_embeddings=[q],
            n_results=K,
            where={"lang": lang} if lang is not None else None,
            include=["distances"],
        )
        return [int(i) for i in res["ids"][0]]

    def close(self) -> None:
        pass


ENGINES = {"qdrant": Qdrant, "qdrant-memory": QdrantMemory, "chroma": Chroma}


def run(
    engine_cls, n: int, vectors, queries, topics, exact: Exact, truth, budget: float, query_budget: float
) -> dict:
    work = tempfile.mkdtemp(prefix=f"vectors-{engine_cls.__name__.lower()}-", dir=DATA)
    try:
        gc.collect()
        before = rss_mib()
        eng = engine_cls(work)
        started = time.perf_counter()
        inserted = 0
        for s in range(0, n, BATCH):
            eng.insert(s, vectors[s : s + BATCH], topics)
            inserted = min(s + BATCH, n)
            if time.perf_counter() - started > budget and inserted < n:
                break
        took = time.perf_counter() - started
        rate = inserted / took
        out = {"engine": eng.name, "n": n, "rate": rate, "rss": rss_mib() - before}
        if inserted < n:
            out["stopped"] = (inserted, took, n / rate)
            eng.close()
            return out
        for lang, label in [(None, "all"), ("de", "de")]:
            for q in queries[:WARMUP]:
                eng.query(q, lang)
            times, hits, phase = [], 0, time.perf_counter()
            for qi, q in enumerate(queries):
                t = time.perf_counter()
                got = eng.query(q, lang)
                times.append(time.perf_counter() - t)
                if lang is None:
                    want, tenth = truth[qi]
                else:
                    want, tenth = exact.top(q, LANGS.index(lang))
                hits += exact.recall(got, q, want, tenth)
                if time.perf_counter() - phase > query_budget:
                    break
            p50, p95 = pcts(times)
            out[label] = (p50, p95, hits / (K * len(times)), len(times))
        out["disk"] = sum(f.stat().st_size for f in Path(work).rglob("*") if f.is_file()) / 2**20
        eng.close()
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("sizes", nargs="*", type=int, default=[10_000, 100_000])
    ap.add_argument("--engines", default="qdrant,qdrant-memory,chroma")
    ap.add_argument("--insert-budget", type=float, default=900.0)
    ap.add_argument("--query-budget", type=float, default=300.0)
    args = ap.parse_args()
    import chromadb
    import qdrant_client
    from importlib.metadata import version

    print(
        f"numpy {np.__version__}, qdrant-client {version('qdrant-client')}, "
        f"chromadb {chromadb.__version__}; python {sys.version.split()[0]}; "
        f"{os.cpu_count()} cpus"
    )
    del qdrant_client
    rows = []
    for n in args.sizes:
        d = DATA / f"n{n}"
        vectors = np.load(d / "vectors.npy")
        queries = np.load(d / "queries.npy")
        topics_path = d / "topics.npy"
        topics = np.load(topics_path) if topics_path.exists() else np.zeros(n, dtype=np.uint32)
        exact = Exact(vectors)
        truth, times = [], []
        for q in queries:
            t = time.perf_counter()
            truth.append(exact.top(q))
            times.append(time.perf_counter() - t)
        np_p50, np_p95 = pcts(times)
        rust_truth = np.load(d / "truth.npy")
        agree = np.mean([len(set(a[0]) & set(b)) / K for a, b in zip(truth, rust_truth)])
        print(
            f"n={n}: numpy exact p50 {np_p50:.2f} ms p95 {np_p95:.2f} ms "
            f"(agrees with bench-vectors' exact top 10 on {agree:.4f})"
        )
        for name in args.engines.split(","):
            r = run(
                ENGINES[name], n, vectors, queries, topics, exact, truth,
                args.insert_budget, args.query_budget,
            )
            r["numpy"] = np_p50
            rows.append(r)
            if "stopped" in r:
                done, took, full = r["stopped"]
                print(
                    f"  {r['engine']}: stopped after {done} vectors in {took:.0f} s "
                    f"({r['rate']:.0f} vec/s: ~{full:.0f} s for {n})"
                )
                continue
            a, de = r["all"], r["de"]
            print(
                f"  {r['engine']}: insert {r['rate']:.0f} vec/s, RSS +{r['rss']:.0f} MiB, "
                f"disk {r['disk']:.0f} MiB | query p50 {a[0]:.2f} p95 {a[1]:.2f} ms "
                f"recall@10 {a[2]:.4f} ({a[3]} queries) | lang=de p50 {de[0]:.2f} "
                f"p95 {de[1]:.2f} ms recall {de[2]:.4f} ({de[3]} queries)"
            )
    print()
    print("| engine | vectors | insert vec/s | RSS MiB | query p50 ms | p95 ms | recall@10 | filter 25% p50/p95 ms | recall | numpy exact p50 ms |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        if "stopped" in r:
            done, took, full = r["stopped"]
            print(
                f"| {r['engine']} | {r['n']} | {r['rate']:.0f} | – | stopped after {done} "
                f"in {took:.0f} s (~{full:.0f} s to build) | | | | | {r['numpy']:.2f} |"
            )
            continue
        a, de = r["all"], r["de"]
        print(
            f"| {r['engine']} | {r['n']} | {r['rate']:.0f} | {r['rss']:.0f} | {a[0]:.2f} | "
            f"{a[1]:.2f} | {a[2]:.4f} | {de[0]:.2f} / {de[1]:.2f} | {de[2]:.4f} | {r['numpy']:.2f} |"
        )


if __name__ == "__main__":
    main()
