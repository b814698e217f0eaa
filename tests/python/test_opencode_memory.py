"""ainative-opencode-memory (the opencode MCP server) against zerodb-local, its tools called
as an agent calls them. It keeps memories in one namespace named by a bare word (`opencode`
by default), sent as `metadata.namespace` and `filter.namespace`, and never checks a
status: a refused write only shows up as a memory that is not there.

The module reads its configuration at import, so each test imports it afresh with the
server's URL and a key in the environment.
"""

import asyncio
import importlib
import re
import sys

import httpx

from conftest import root_key


def opencode(monkeypatch, tmp_path, base, key, namespace=None):
    monkeypatch.setenv("AINATIVE_API_URL", base)
    monkeypatch.setenv("AINATIVE_API_KEY", key)
    # Never the user's own cached trial key.
    monkeypatch.setenv("AINATIVE_KEY_CACHE", str(tmp_path / "opencode-memory.json"))
    if namespace:
        monkeypatch.setenv("OPENCODE_MEMORY_NAMESPACE", namespace)
    else:
        monkeypatch.delenv("OPENCODE_MEMORY_NAMESPACE", raising=False)
    sys.modules.pop("ainative_opencode_memory.server", None)
    return importlib.import_module("ainative_opencode_memory.server")


def count(stats_text: str) -> int:
    m = re.match(r"(\d+) memories stored in namespace", stats_text)
    assert m, stats_text
    return int(m.group(1))


def test_store_search_stats_and_clear_by_tag_in_the_default_namespace(server, monkeypatch, tmp_path):
    oc = opencode(monkeypatch, tmp_path, server.base, root_key(server))
    assert oc.NAMESPACE == "opencode"
    run = asyncio.run

    facts = [
        ("The build runs with `cargo nextest run --workspace`", ["build"]),
        ("Release builds use the perf profile for benchmarks", ["build"]),
        ("Comments in this repo say why, not what", ["style"]),
    ]
    for content, tags in facts:
        assert run(oc.opencode_store_memory(content, tags)).startswith("Stored.")
    assert count(run(oc.opencode_memory_stats())) == 3

    found = run(oc.opencode_search_memory("cargo nextest", 5))
    assert found.startswith("1. The build runs with `cargo nextest run --workspace`"), found
    ctx = run(oc.opencode_recall_context("why comments", 8))
    assert "Comments in this repo say why, not what" in ctx, ctx

    # The memories live in the bare-named namespace, readable as such over the API.
    r = httpx.post(
        f"{server.base}/api/v1/public/memory/v2/recall",
        headers={"X-API-Key": root_key(server)},
        json={"query": "*", "namespace": "opencode", "limit": 10},
    )
    assert r.status_code == 200, r.text
    assert {m["namespace"] for m in r.json()["results"]} == {"opencode"}
    assert len(r.json()["results"]) == 3

    assert "Cleared memories tagged" in run(oc.opencode_clear_memory("build"))
    assert count(run(oc.opencode_memory_stats())) == 1
    assert "Comments in this repo" in run(oc.opencode_search_memory("comments", 5))
    run(oc.opencode_clear_memory())
    assert count(run(oc.opencode_memory_stats())) == 0
    assert run(oc.opencode_search_memory("build", 5)) == "No relevant memories found."


def test_a_key_scoped_to_the_bare_namespace_works_there_and_nowhere_else(server, monkeypatch, tmp_path):
    root = {"Authorization": f"Bearer {root_key(server)}"}
    r = httpx.post(
        f"{server.base}/api/v1/auth/keys",
        headers=root,
        json={"name": "opencode-agent", "scopes": ["memory:write:team-notes", "memory:read:team-notes"]},
    )
    assert r.status_code == 201, r.text
    key = r.json()["key"]
    # Something the scoped key must not see.
    r = httpx.post(
        f"{server.base}/api/v1/public/memory/v2/remember",
        headers=root,
        json={"content": "the deploy password rotates on Mondays", "namespace": "opencode"},
    )
    assert r.status_code == 201, r.text

    oc = opencode(monkeypatch, tmp_path, server.base, key, namespace="team-notes")
    run = asyncio.run
    run(oc.opencode_store_memory("Standup moved to 9:30", ["meetings"]))
    assert count(run(oc.opencode_memory_stats())) == 1
    assert "Standup moved to 9:30" in run(oc.opencode_search_memory("when is standup", 5))

    # The same key against the default namespace: refused, so nothing is stored or read.
    other = opencode(monkeypatch, tmp_path, server.base, key)
    run(other.opencode_store_memory("should not land", []))
    assert count(run(other.opencode_memory_stats())) == 0
    r = httpx.post(
        f"{server.base}/api/v1/public/memory/v2/recall",
        headers={"X-API-Key": key},
        json={"query": "deploy password", "namespace": "opencode"},
    )
    assert r.status_code == 403, r.text
    assert "memory:read:opencode" in r.json()["detail"], r.text
