"""zerodb-mcp 1.1.0's official `ZeroDBClient`, driven against zerodb-local exactly as its
MCP tools call it (through its `projects`, `tables` and `files` operation modules, which
send `POST /api/v1/public/zerodb/mcp/execute`): projects created, read, listed and
counted; a table created, filled, queried, changed and dropped; a file uploaded from
disk and from bytes (with the client's SHA-256), listed, downloaded to memory and to
disk, and deleted. Errors arrive as the client's typed exceptions, without retries for
what is not served.
"""

import asyncio
import hashlib

import httpx
import pytest
from zerodb_mcp import ValidationError, ZeroDBClient, ZeroDBError

from conftest import root_key


def client_for(server, **kw) -> ZeroDBClient:
    return ZeroDBClient(api_key=root_key(server), base_url=server.base, **kw)


def test_projects_through_the_official_client(server):
    async def go():
        async with client_for(server) as client:
            health = await client.health_check()
            assert health.get("status") != "error", health

            ops = await client.get_operations()
            names = {o["name"] for o in ops["operations"]}
            assert {"create_project", "query_rows", "upload_file"} <= names

            p = await client.projects.create(
                name="AI Assistant Project",
                description="Semantic search for documentation",
                tier="pro",
                settings={"vector_dimensions": 384, "enable_quantum": False},
            )
            for k in ("project_id", "name", "tier", "created_at"):
                assert k in p, p
            assert p["tier"] == "pro"
            pid = p["project_id"]

            got = await client.projects.get(project_id=pid)
            assert got["name"] == "AI Assistant Project"
            assert got["settings"] == {"vector_dimensions": 384, "enable_quantum": False}

            await client.projects.create(name="second")
            listed = await client.projects.list()
            assert listed["total"] == 2
            assert [x["name"] for x in listed["projects"]] == ["AI Assistant Project", "second"]
            pro = await client.projects.list(tier="pro")
            assert [x["project_id"] for x in pro["projects"]] == [pid]

            updated = await client.projects.update(project_id=pid, name="Renamed")
            assert updated["updated_fields"] == ["name"]

            stats = await client.projects.get_stats(project_id=pid)
            assert stats["project_id"] == pid
            assert stats["vectors"]["total"] == 0
            assert stats["tables"] == {"total": 0, "total_rows": 0}

            deleted = await client.projects.delete(project_id=pid, confirm=True)
            assert deleted["status"] == "success"

        # A 404 is retried by the client (none here), then raised as ZeroDBError: its
        # ResourceNotFoundError is caught and wrapped by its own retry loop.
        async with client_for(server, max_retries=0) as client:
            with pytest.raises(ZeroDBError) as e:
                await client.projects.get(project_id=pid)
            assert "[404]" in str(e.value)
            # Not served: a 422 (never retried) naming the operation.
            with pytest.raises(ValidationError) as e:
                await client.projects.enable_database(project_id=pid)
            assert "enable_database" in str(e.value) and "not served" in str(e.value)

    asyncio.run(go())


def test_tables_through_the_official_client(server):
    async def go():
        async with client_for(server) as client:
            pid = (await client.projects.create(name="db"))["project_id"]
            t = await client.tables.create(
                project_id=pid,
                table_name="users",
                schema_definition={"user_id": "string", "email": "string", "age": "integer", "tags": "array"},
                indexes=["user_id", "email"],
            )
            for k in ("table_id", "table_name", "schema", "created_at"):
                assert k in t, t

            rows = [
                {"user_id": f"u{i}", "email": f"user{i}@example.com", "age": 20 + i, "tags": ["a"]}
                for i in range(10)
            ]
            ins = await client.tables.insert_rows(project_id=pid, table_name="users", rows=rows)
            assert ins["inserted"] == 10 and ins["failed"] == 0 and len(ins["row_ids"]) == 10

            q = await client.tables.query_rows(
                project_id=pid, table_name="users", filters={"age": {"$gte": 25}}, sort_by="age", order="desc", limit=3
            )
            assert q["total"] == 5
            assert [r["age"] for r in q["rows"]] == [29, 28, 27]

            one = await client.tables.query_rows(project_id=pid, table_name="users", filters={"email": "user3@example.com"})
            assert one["total"] == 1 and one["rows"][0]["user_id"] == "u3"

            up = await client.tables.update_rows(
                project_id=pid, table_name="users", filters={"age": {"$lt": 22}}, updates={"verified": True}
            )
            assert up["updated"] == 2

            gone = await client.tables.delete_rows(project_id=pid, table_name="users", filters={"verified": True})
            assert gone["deleted"] == 2

            tables = await client.tables.list(project_id=pid)
            assert tables["total"] == 1
            assert tables["tables"][0]["table_name"] == "users"
            assert tables["tables"][0]["row_count"] == 8
            got = await client.tables.get(project_id=pid, table_name="users")
            assert got["row_count"] == 8

            stats = await client.projects.get_stats(project_id=pid)
            assert stats["tables"] == {"total": 1, "total_rows": 8}

            dropped = await client.tables.delete(project_id=pid, table_name="users")
            assert dropped["status"] == "success" and dropped["rows_deleted"] == 8
            assert (await client.tables.list(project_id=pid))["total"] == 0

            # A row that breaks the schema: the client's ValidationError, naming where.
            await client.tables.create(project_id=pid, table_name="t", schema_definition={"age": "integer"})
            with pytest.raises(ValidationError) as e:
                await client.tables.insert_rows(project_id=pid, table_name="t", rows=[{"age": "old"}])
            assert e.value.errors[0]["loc"] == ["body", "params", "rows", 0, "age"]

    asyncio.run(go())


def test_files_through_the_official_client(server, tmp_path):
    async def go():
        async with client_for(server) as client:
            pid = (await client.projects.create(name="files"))["project_id"]
            path = tmp_path / "notes.txt"
            content = b"Hello from zerodb-mcp\n" * 50
            path.write_bytes(content)

            up = await client.files.upload(project_id=pid, file_path=path, metadata={"category": "notes"})
            for k in ("file_id", "file_name", "content_type", "file_size", "checksum", "created_at"):
                assert k in up, up
            assert up["file_name"] == "notes.txt"
            assert up["content_type"] == "text/plain"
            assert up["file_size"] == len(content)
            assert up["checksum"] == hashlib.sha256(content).hexdigest()
            fid = up["file_id"]

            raw = bytes(range(256))
            second = await client.files.upload_bytes(project_id=pid, content=raw, file_name="blob.bin")
            assert second["content_type"] == "application/octet-stream"

            meta = await client.files.get_metadata(project_id=pid, file_id=fid)
            assert meta["metadata"] == {"category": "notes"}

            listed = await client.files.list(project_id=pid)
            assert listed["total"] == 2
            assert sorted(f["file_name"] for f in listed["files"]) == ["blob.bin", "notes.txt"]
            texts = await client.files.list(project_id=pid, content_type="text/plain")
            assert [f["file_id"] for f in texts["files"]] == [fid]

            assert await client.files.download(project_id=pid, file_id=fid) == content
            saved = await client.files.download(project_id=pid, file_id=second["file_id"], save_path=tmp_path / "out" / "blob.bin")
            assert saved["size"] == 256
            assert (tmp_path / "out" / "blob.bin").read_bytes() == raw

            url = await client.files.generate_presigned_url(project_id=pid, file_id=fid, expires_in=600)
            assert url["url"].startswith(server.base) and url["expires_at"]
            fetched = httpx.get(url["url"])
            assert fetched.status_code == 200 and fetched.content == content

            stats = await client.projects.get_stats(project_id=pid)
            assert stats["files"]["total"] == 2

            assert (await client.files.delete(project_id=pid, file_id=fid))["status"] == "success"
            assert (await client.files.list(project_id=pid))["total"] == 1

        async with client_for(server, max_retries=0) as client:
            with pytest.raises(ZeroDBError) as e:
                await client.files.get_metadata(project_id=pid, file_id=fid)
            assert "[404]" in str(e.value)

    asyncio.run(go())


def test_vectors_and_semantic_search_through_the_official_client(server):
    async def go():
        async with client_for(server) as client:
            pid = (await client.projects.create(name="vectors"))["project_id"]
            v = client.vectors
            one = await v.upsert(project_id=pid, embedding=[1.0, 0.0, 0.0], document="first",
                                 metadata={"kind": "a"})
            assert one["status"] == "success"
            batch = await v.batch_upsert(project_id=pid, vectors=[
                {"embedding": [0.9, 0.1, 0.0], "document": "second", "metadata": {"kind": "b"}},
                {"embedding": [0.0, 0.0, 1.0], "document": "third"},
            ])
            assert (batch["total"], batch["successful"], batch["failed"]) == (2, 2, 0)
            found = await v.search(project_id=pid, query_vector=[1.0, 0.0, 0.0], limit=5, threshold=0.5)
            assert [r["document"] for r in found["results"]] == ["first", "second"]
            assert found["results"][0]["similarity"] == pytest.approx(1.0, abs=1e-4)
            assert found["results"][1]["metadata"] == {"kind": "b"}
            got = await v.get(project_id=pid, vector_id=one["vector_id"])
            assert got["document"] == "first" and got["embedding"] == [1.0, 0.0, 0.0]
            listed = await v.list(project_id=pid, limit=2, offset=1)
            assert listed["total"] == 3 and len(listed["vectors"]) == 2
            stats = await v.stats(project_id=pid)
            assert stats["total_vectors"] == 3 and stats["dimensions"] == 3
            assert stats["namespaces"] == ["default"]
            assert (await v.delete(project_id=pid, vector_id=one["vector_id"]))["status"] == "success"
            assert (await v.stats(project_id=pid))["total_vectors"] == 2
            # A vector of another size: a 422 that names the namespace's size.
            with pytest.raises(ValidationError) as e:
                await v.upsert(project_id=pid, embedding=[1.0, 2.0], document="x")
            assert "holds vectors of 3" in str(e.value)

            # Texts embedded by the server and found by meaning.
            e = client.embeddings
            stored = await e.embed_and_store(
                project_id=pid, namespace="docs",
                texts=["The mitochondria is the powerhouse of the cell.",
                       "Interest rates were raised by the central bank."],
                metadata_list=[{"subject": "biology"}, {"subject": "economics"}])
            assert stored["success"] and stored["vectors_stored"] == 2 and stored["dimensions"] == 384
            hits = await e.semantic_search(project_id=pid, namespace="docs", query="monetary policy",
                                           limit=1, threshold=0.1)
            assert hits["results"][0]["metadata"] == {"subject": "economics"}
            assert hits["total_results"] == 1

    asyncio.run(go())
