"""ainative-python's project memory (`client.zerodb.memory`) against zerodb-local, every call
as the official client makes it: create, list, get, update, search, bulk_create,
get_related and delete, in a project the same client created.

The client joins its base URL and a path with `urljoin`, so the base must end in
`/api/v1/` (CLIENTS.md, "PY base-URL quirk").
"""

import subprocess
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from ainative import AINativeClient
from ainative.exceptions import APIError
from ainative.zerodb.memory import MemoryPriority

from conftest import BIN, root_key


def client_for(server, key=None) -> AINativeClient:
    return AINativeClient(api_key=key or root_key(server), base_url=f"{server.base}/api/v1/")


def test_every_memory_call_of_the_client_round_trips(server):
    client = client_for(server)
    project = client.zerodb.projects.create(name="py memory", description="project memory")
    pid = project["id"]
    memory = client.zerodb.memory

    created = memory.create(
        pid,
        content="User prefers dark mode in every editor",
        title="UI preference",
        tags=["preferences", "ui"],
        priority=MemoryPriority.HIGH,
        metadata={"source": "settings"},
        user_id="user-1",
        expires_at=datetime.now(timezone.utc) + timedelta(days=30),
    )
    mid = created["id"]
    assert mid.startswith("mem_")
    assert created["title"] == "UI preference"
    assert created["priority"] == "high"
    assert created["tags"] == ["preferences", "ui"]
    assert created["user_id"] == "user-1"
    assert created["metadata"] == {"source": "settings"}
    assert created["expires_at"].endswith("Z")
    # A naive datetime (isoformat without an offset) is read as UTC.
    other = memory.create(
        pid,
        content="The team ships releases every Friday afternoon",
        expires_at=datetime.now() + timedelta(days=1),
    )
    assert other["title"] == "Memory Entry"
    assert other["priority"] == "medium"

    got = memory.get(pid, mid)
    assert got["content"] == "User prefers dark mode in every editor"
    assert got["project_id"] == pid

    bulk = memory.bulk_create(
        pid,
        [
            {"content": "User likes a dark theme and large fonts", "tags": ["ui"], "user_id": "user-1"},
            {"content": "Quarterly revenue grew ten percent", "priority": "critical"},
            {"content": "Deploys need two approvals", "priority": "low", "user_id": "user-2"},
        ],
    )
    assert bulk["created"] == 3 and bulk["failed"] == 0
    assert [m["priority"] for m in bulk["memories"]] == ["medium", "critical", "low"]

    listed = memory.list(pid, limit=100)
    assert listed["count"] == 5
    assert listed["memories"][0]["content"] == "Deploys need two approvals"
    page = memory.list(pid, limit=2, offset=2)
    assert [m["content"] for m in page["memories"]] == [
        "User likes a dark theme and large fonts",
        "The team ships releases every Friday afternoon",
    ]
    assert page["has_more"] is True
    assert [m["id"] for m in memory.list(pid, tags=["preferences", "ui"])["memories"]] == [mid]
    assert [m["content"] for m in memory.list(pid, priority=MemoryPriority.CRITICAL)["memories"]] == [
        "Quarterly revenue grew ten percent"
    ]
    assert {m["content"] for m in memory.list(pid, user_id="user-1")["memories"]} == {
        "User prefers dark mode in every editor",
        "User likes a dark theme and large fonts",
    }
    assert [m["id"] for m in memory.list(pid, search="DARK mode")["memories"]] == [mid]

    updated = memory.update(
        pid, mid, content="User prefers dark mode everywhere", priority=MemoryPriority.CRITICAL, tags=["ui"]
    )
    assert updated["content"] == "User prefers dark mode everywhere"
    assert updated["priority"] == "critical"
    assert updated["tags"] == ["ui"]
    assert updated["title"] == "UI preference"
    assert updated["metadata"] == {"source": "settings"}
    assert memory.update(pid, mid, title="Dark mode")["title"] == "Dark mode"

    # Search by meaning (the client returns `results`); the user filter applies.
    results = memory.search(pid, query="which colour theme does the user like?", limit=3)
    assert 1 <= len(results) <= 3
    assert "dark" in results[0]["content"]
    assert all("score" in r for r in results)
    mine = memory.search(pid, query="deploys approvals", user_id="user-2")
    assert [r["content"] for r in mine] == ["Deploys need two approvals"]
    words = memory.search(pid, query="revenue", semantic=False)
    assert [r["content"] for r in words] == ["Quarterly revenue grew ten percent"]

    # Related: by meaning, the memory itself left out (the client returns `memories`).
    related = memory.get_related(pid, mid, limit=2)
    assert len(related) == 2
    assert mid not in [r["id"] for r in related]
    assert related[0]["content"] == "User likes a dark theme and large fonts"

    deleted = memory.delete(pid, mid)
    assert deleted["deleted"] is True
    with pytest.raises(APIError) as e:
        memory.get(pid, mid)
    assert e.value.status_code == 404
    assert memory.list(pid)["count"] == 4


def second_account_key(server) -> str:
    """A root key of another account on the same server (`zerodb-local accounts create`)."""
    out = subprocess.run(
        [BIN, "accounts", "create", "--name", "tenant-b", "--data-dir", server.data_dir],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return dict(line.split(": ", 1) for line in out.stdout.strip().splitlines())["root_key"]


def test_another_accounts_project_and_bad_input_are_refused(server):
    client = client_for(server)
    pid = client.zerodb.projects.create(name="mine")["id"]
    memory = client.zerodb.memory
    mid = memory.create(pid, content="a private note")["id"]

    # Another account sees neither the project nor, through its own, the memory.
    other = client_for(server, second_account_key(server)).zerodb
    theirs = other.projects.create(name="theirs")["id"]
    for call in (
        lambda: other.memory.get(pid, mid),
        lambda: other.memory.list(pid),
        lambda: other.memory.create(pid, content="intruder"),
        lambda: other.memory.search(pid, query="note"),
        lambda: other.memory.get_related(pid, mid),
        lambda: other.memory.delete(pid, mid),
    ):
        with pytest.raises(APIError) as e:
            call()
        assert e.value.status_code == 404
        assert "PROJECT_NOT_FOUND" in e.value.response_body
    with pytest.raises(APIError) as e:
        other.memory.get(theirs, mid)
    assert e.value.status_code == 404
    assert "private" not in e.value.response_body
    assert memory.get(pid, mid)["content"] == "a private note"

    # 422s name the field; nothing is written by a refused bulk.
    with pytest.raises(APIError) as e:
        memory.bulk_create(pid, [{"content": f"m{i}"} for i in range(501)])
    assert e.value.status_code == 422
    assert "500" in e.value.response_body
    with pytest.raises(APIError) as e:
        memory.bulk_create(pid, [{"content": "ok"}, {"content": ""}])
    assert e.value.status_code == 422
    assert memory.list(pid)["count"] == 1
    with pytest.raises(APIError) as e:
        memory.search(pid, query="x", limit=0)
    assert e.value.status_code == 422
    with pytest.raises(APIError) as e:
        memory.update(pid, mid)
    assert e.value.status_code == 422

    # An unknown project is PROJECT_NOT_FOUND too.
    with pytest.raises(APIError) as e:
        memory.list("proj_does_not_exist")
    assert e.value.status_code == 404
    assert "PROJECT_NOT_FOUND" in e.value.response_body

    # The suspended project is read-only.
    r = httpx.put(
        f"{server.base}/api/v1/projects/{pid}/status",
        headers={"X-API-Key": root_key(server)},
        json={"status": "suspended"},
    )
    assert r.status_code == 200, r.text
    assert memory.get(pid, mid)["content"] == "a private note"
    with pytest.raises(APIError) as e:
        memory.create(pid, content="refused")
    assert e.value.status_code == 403
    assert "PROJECT_SUSPENDED" in e.value.response_body
