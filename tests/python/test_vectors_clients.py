"""Vectors and embeddings, driven by the vendor's own clients against zerodb-local:
ainative-python's `zerodb.vectors` (upsert, search with a filter, get, metadata, stats,
delete by ids / filter / all), ainative-agent's `vectors` (upsert, get, search by vector
and by text, stats, delete), and langchain-zerodb's `ZeroDBVectorStore` (add_texts, then
similarity_search_with_score finding a text by meaning, with no word in common).
"""

import asyncio
import math

import httpx
import pytest
from ainative import AINativeClient
from ainative_agent import AINativeClient as AgentClient
from ainative_agent import NotFoundError
from langchain_zerodb import ZeroDBVectorStore

from conftest import root_key


def py_client(server):
    # The trailing slash matters: urljoin drops the last segment of a base without one.
    return AINativeClient(api_key=root_key(server), base_url=f"{server.base}/api/v1/")


def unit(i, n=8):
    v = [0.0] * n
    v[i] = 1.0
    return v


def test_ainative_python_vectors(server):
    client = py_client(server)
    pid = client.zerodb.projects.create(name="py-vectors")["id"]
    vectors = client.zerodb.vectors
    r = vectors.upsert(
        pid,
        vectors=[unit(0), unit(1), [0.9, 0.1, 0, 0, 0, 0, 0, 0]],
        metadata=[{"genre": "drama", "year": 2020}, {"genre": "comedy", "year": 2024}, {"genre": "drama", "year": 2022}],
        ids=["a", "b", "c"],
        namespace="films",
    )
    assert r["upserted_count"] == 3 and r["ids"] == ["a", "b", "c"]

    results = vectors.search(pid, vector=unit(0), top_k=2, namespace="films")
    assert [x["id"] for x in results] == ["a", "c"]
    assert math.isclose(results[0]["score"], 1.0, abs_tol=1e-4)
    assert results[0]["metadata"] == {"genre": "drama", "year": 2020}

    filtered = vectors.search(pid, vector=unit(0), namespace="films", filter={"year": {"$gte": 2022}})
    assert [x["id"] for x in filtered] == ["c", "b"]

    got = vectors.get(pid, ids=["b", "a"], namespace="films")
    assert [x["id"] for x in got] == ["b", "a"]
    assert got[1]["values"] == unit(0)

    vectors.update_metadata(pid, "b", {"rating": 5}, namespace="films")
    assert vectors.search(pid, vector=unit(1), top_k=1, namespace="films")[0]["metadata"] == {
        "genre": "comedy", "year": 2024, "rating": 5}

    stats = vectors.describe_index_stats(pid)
    assert stats["total_vectors"] == 3 and stats["dimensions"] == 8

    assert vectors.delete(pid, ids=["a"], namespace="films")["deleted_count"] == 1
    assert vectors.delete(pid, filter={"genre": "comedy"}, namespace="films")["deleted_count"] == 1
    assert [x["id"] for x in vectors.search(pid, vector=unit(0), namespace="films")] == ["c"]
    assert vectors.delete(pid, delete_all=True, namespace="films")["deleted_count"] == 1
    assert vectors.describe_index_stats(pid, namespace="films")["total_vectors"] == 0
    # The project's usage counts what is stored.
    usage = httpx.get(f"{server.base}/v1/public/projects/{pid}", headers={"X-API-Key": root_key(server)}).json()
    assert usage["usage"]["vectors_stored"] == 0


def test_ainative_agent_vectors(server):
    async def main():
        async with AgentClient(base_url=server.base, api_key=root_key(server)) as client:
            # 384 dimensions: the size of the server's text embeddings, so text search works.
            v = [0.0] * 384
            v[3] = 1.0
            await client.vectors.upsert("v1", v, metadata={"kind": "manual"})
            rec = await client.vectors.get("v1")
            assert rec.id == "v1" and rec.values == v and rec.metadata == {"kind": "manual"}
            stats = await client.vectors.stats()
            assert stats.count == 1 and stats.dimensions == 384
            hits = await client.vectors.search(vector=v, limit=1)
            assert hits[0].id == "v1" and hits[0].score == pytest.approx(1.0, abs=1e-4)
            hits = await client.vectors.search(query="anything at all", limit=5)
            assert [h.id for h in hits] == ["v1"]
            await client.vectors.delete("v1")
            with pytest.raises(NotFoundError):
                await client.vectors.get("v1")
            assert (await client.vectors.stats()).count == 0

    asyncio.run(main())


def test_langchain_zerodb_finds_texts_by_meaning(server):
    key = root_key(server)
    pid = httpx.post(f"{server.base}/v1/public/projects", headers={"X-API-Key": key},
                     json={"name": "lc"}).json()["id"]
    store = ZeroDBVectorStore(api_key=key, project_id=pid, base_url=server.base, namespace="kb")
    ids = store.add_texts(
        [
            "The cat curled up on the warm windowsill and slept all afternoon.",
            "Quarterly revenue grew eight percent, beating analyst expectations.",
            "Preheat the oven and whisk the eggs with sugar until pale.",
        ],
        metadatas=[{"topic": "pets"}, {"topic": "finance"}, {"topic": "baking"}],
    )
    assert len(ids) == 3 and len(set(ids)) == 3
    # No word in common with the finance text: found by meaning.
    results = store.similarity_search_with_score("How much money did the company make?", k=2)
    doc, score = results[0]
    assert doc.page_content.startswith("Quarterly revenue"), results
    assert doc.metadata == {"topic": "finance"}
    assert 0.3 <= score <= 1.0
    docs = store.similarity_search("a kitten napping", k=1)
    assert docs[0].metadata == {"topic": "pets"}
