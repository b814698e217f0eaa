"""Projects and the project database, driven by the vendor's own clients against
zerodb-local: seed 004's smoke test as written, ainative-python's projects and tables,
ainative-agent's tables, ainative-opencode-memory provisioning itself through instant-db,
and zerodb-mem0 given a key and a project id (it provisions only against the hosted API).
"""

import asyncio
import importlib
import sys

import httpx
import pytest
from ainative import AINativeClient
from ainative.zerodb.projects import ProjectStatus
from ainative_agent import AINativeClient as AgentClient

from conftest import root_key

# -- seed 004's smoke test, with the helpers it names ---------------------------------

_SERVER = {}


def create_project(name, **extra):
    s = _SERVER["s"]
    r = httpx.post(f"{s.base}/v1/public/projects", headers={"X-API-Key": root_key(s)}, json={"name": name, **extra})
    assert r.status_code == 201, r.text
    return r.json()


def list_projects():
    s = _SERVER["s"]
    r = httpx.get(f"{s.base}/v1/public/projects", headers={"X-API-Key": root_key(s)})
    assert r.status_code == 200, r.text
    return r.json()


def get_project(project_id):
    s = _SERVER["s"]
    r = httpx.get(f"{s.base}/v1/public/projects/{project_id}", headers={"X-API-Key": root_key(s)})
    assert r.status_code == 200, r.text
    return r.json()


def test_project_status_field(server):
    _SERVER["s"] = server
    # Seed 004, "Smoke Test Validation", verbatim:
    # Create project
    response = create_project(name="Test Project")
    assert "status" in response, "status field missing from create response"
    assert response["status"] == "ACTIVE", "new project must have ACTIVE status"

    # List projects
    projects = list_projects()
    for project in projects["items"]:
        assert "status" in project, "status field missing from list response"
        assert project["status"] in ["ACTIVE", "SUSPENDED", "DELETED"]

    # Get project details
    details = get_project(project_id=response["id"])
    assert "status" in details, "status field missing from get response"
    assert details["status"] == "ACTIVE"
    # (and the list was not empty, so the loop above checked something)
    assert projects["total"] == 1 and len(projects["items"]) == 1


# -- ainative-python ------------------------------------------------------------------


def py_client(server, key=None):
    # The trailing slash matters: urljoin drops the last segment of a base without one.
    return AINativeClient(api_key=key or root_key(server), base_url=f"{server.base}/api/v1/")


def test_ainative_python_projects_and_tables(server):
    client = py_client(server)
    projects = client.zerodb.projects
    p = projects.create(name="py-project", description="from ainative-python", metadata={"team": "agents"})
    pid = p["id"]
    assert p["status"] == "active"
    assert projects.get(pid)["metadata"] == {"team": "agents"}
    listed = projects.list(limit=100, offset=0, status=ProjectStatus.ACTIVE)
    assert [x["id"] for x in listed["projects"]] == [pid]
    assert projects.update(pid, name="renamed")["name"] == "renamed"

    tables = client.zerodb.tables
    created = tables.create_table(
        pid,
        "users",
        schema={"fields": {"email": "string", "name": "string", "age": "number"}, "indexes": ["email", "age"]},
        description="people",
    )
    assert created["table_name"] == "users"
    assert tables.table_exists(pid, "users")
    assert not tables.table_exists(pid, "nobody")
    rows = [
        {"email": "john@example.com", "name": "John", "age": 30},
        {"email": "jane@example.com", "name": "Jane", "age": 25},
        {"email": "kid@example.com", "name": "Kid", "age": 12},
    ]
    inserted = tables.insert_rows(pid, "users", rows)
    assert inserted["inserted_count"] == 3 and len(inserted["ids"]) == 3

    result = tables.query_rows(pid, "users", filter={"age": {"$gte": 25}}, sort={"age": -1}, limit=10)
    assert [r["name"] for r in result["rows"]] == ["John", "Jane"]
    assert result["total"] == 2

    updated = tables.update_rows(pid, "users", filter={"email": "john@example.com"}, update={"$set": {"age": 31}})
    assert updated["modified_count"] == 1
    assert tables.query_rows(pid, "users", filter={"email": "john@example.com"})["rows"][0]["age"] == 31

    assert tables.count_rows(pid, "users") == 3
    assert tables.count_rows(pid, "users", {"age": {"$gte": 18}}) == 2
    assert tables.delete_rows(pid, "users", filter={"age": {"$lt": 18}})["deleted_count"] == 1
    assert tables.list_tables(pid)["tables"][0]["row_count"] == 2

    stats = projects.get_statistics(pid)
    assert stats["tables_created"] == 1 and stats["storage_bytes"] > 0

    # Suspend (writes refused, reads allowed), activate, then delete (404 from then on).
    projects.suspend(pid, reason="maintenance")
    with pytest.raises(Exception) as refused:
        tables.insert_rows(pid, "users", [{"email": "x@example.com", "name": "X", "age": 40}])
    assert "suspended" in str(refused.value).lower() or "403" in str(refused.value)
    assert tables.count_rows(pid, "users") == 2
    projects.activate(pid)
    assert tables.delete_table(pid, "users", confirm=True)["rows_deleted"] == 2
    projects.delete(pid)
    with pytest.raises(Exception):
        projects.get(pid)


def test_a_python_client_of_another_account_sees_nothing(server):
    mine = py_client(server)
    pid = mine.zerodb.projects.create(name="private")["id"]
    mine.zerodb.tables.create_table(pid, "t", schema={"fields": {"a": "number"}})
    mine.zerodb.tables.insert_rows(pid, "t", [{"a": 1}])
    # A second account, made by instant-db.
    r = httpx.post(f"{server.base}/api/v1/public/instant-db", json={"source": "test"})
    assert r.status_code == 201, r.text
    theirs = py_client(server, r.json()["api_key"])
    with pytest.raises(Exception) as e:
        theirs.zerodb.tables.query_rows(pid, "t")
    assert "404" in str(e.value) or "not found" in str(e.value).lower()
    assert not theirs.zerodb.tables.table_exists(pid, "t")
    assert [p["id"] for p in theirs.zerodb.projects.list()["projects"]] != [pid]


# -- ainative-agent -------------------------------------------------------------------


def test_ainative_agent_tables(server):
    async def run():
        async with AgentClient(api_key=root_key(server), base_url=server.base, timeout=30.0) as c:
            t = await c.tables.create("notes", schema={"fields": {"n": "number", "text": "string"}})
            assert t.name == "notes" and t.row_count == 0
            assert t.created_at
            assert [x.name for x in await c.tables.list()] == ["notes"]
            done = await c.tables.insert("notes", [{"n": i, "text": f"note {i}"} for i in range(5)])
            assert done["inserted_count"] == 5
            rows = await c.tables.query("notes", filter={"n": {"$gte": 2}}, sort="-n", limit=2)
            assert [r["n"] for r in rows] == [4, 3]
            assert (await c.tables.update("notes", {"n": 0}, {"$set": {"text": "first"}}))["modified_count"] == 1
            assert (await c.tables.query("notes", filter={"n": 0}))[0]["text"] == "first"
            assert (await c.tables.delete_rows("notes", {"n": {"$lt": 2}}))["deleted_count"] == 2
            assert (await c.tables.get("notes")).row_count == 3
            await c.tables.delete("notes")
            assert await c.tables.list() == []

    asyncio.run(run())


# -- instant-db: opencode provisions itself; mem0 is given a key and project ---------


def test_opencode_memory_provisions_itself_then_stores_and_searches(server, monkeypatch, tmp_path):
    monkeypatch.setenv("AINATIVE_API_URL", server.base)
    monkeypatch.delenv("AINATIVE_API_KEY", raising=False)
    monkeypatch.delenv("ZERODB_API_KEY", raising=False)
    monkeypatch.delenv("OPENCODE_MEMORY_NAMESPACE", raising=False)
    cache = tmp_path / "opencode-memory.json"
    monkeypatch.setenv("AINATIVE_KEY_CACHE", str(cache))
    sys.modules.pop("ainative_opencode_memory.server", None)
    oc = importlib.import_module("ainative_opencode_memory.server")
    assert oc.API_KEY, "provisioned through POST /api/v1/public/instant-db"
    assert cache.exists() and "project_id" in cache.read_text()
    run = asyncio.run
    assert run(oc.opencode_store_memory("The deploy script lives in infra/run.sh", ["ops"])).startswith("Stored.")
    found = run(oc.opencode_search_memory("where is the deploy script", 5))
    assert "infra/run.sh" in found, found
    # The key is the provisioned account's: the server's own account sees none of it.
    r = httpx.get(f"{server.base}/v1/public/projects", headers={"X-API-Key": oc.API_KEY})
    assert r.status_code == 200 and r.json()["total"] == 1
    mine = httpx.get(f"{server.base}/v1/public/projects", headers={"X-API-Key": root_key(server)})
    assert mine.json()["total"] == 0


def test_zerodb_mem0_with_a_key_and_project(server, monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    from zerodb_mem0 import Memory

    r = httpx.post(f"{server.base}/api/v1/public/instant-db", json={"source": "zerodb-mem0"})
    assert r.status_code == 201, r.text
    d = r.json()
    m = Memory(api_key=d["api_key"], project_id=d["project_id"], base_url=server.base)
    added = m.add("Alice prefers dark mode in every editor", user_id="alice")
    assert added["id"]
    hits = m.search("what theme does alice like", user_id="alice", limit=3)
    assert hits and "dark mode" in hits[0]["memory"], hits
