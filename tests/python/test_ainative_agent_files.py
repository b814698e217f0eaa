"""ainative-agent's `files` calls, unchanged, against zerodb-local.

The client's workflow (its `upload` docstring): register the file's metadata, ask for a
presigned URL, PUT the bytes there. zerodb-local's embedded store cannot presign, so the
URL is one zerodb-local signs and serves itself; the bytes go there with a plain HTTP PUT
and no credential, as they would to S3. `download` is read as JSON (`content_base64`).
"""

import asyncio
import base64
import hashlib
import os

import httpx
import pytest
from ainative_agent import AINativeClient, NotFoundError
from ainative_agent.types import FileRecord

from conftest import Server, root_key


def run(coro):
    return asyncio.run(coro)


def sdk(server) -> AINativeClient:
    return AINativeClient(base_url=server.base, api_key=root_key(server), timeout=60.0)


def test_register_put_to_the_presigned_url_download_list_and_delete(server):
    data = os.urandom(1_000_003)

    async def main():
        async with sdk(server) as client:
            rec = await client.files.upload("reports/q1.bin", content_type="application/pdf", size=len(data))
            assert isinstance(rec, FileRecord)
            assert rec.name == "reports/q1.bin" and rec.content_type == "application/pdf"
            assert rec.size == 0 and rec.created_at, "pending until the bytes arrive"
            put_url = await client.files.presigned_url(rec.id, expires_in=600)
            assert put_url.startswith(server.base + "/api/v1/public/files/signed/")
            async with httpx.AsyncClient(timeout=60) as raw:
                r = await raw.put(put_url, content=data)
                assert r.status_code == 200, r.text
                # Once only.
                again = await raw.put(put_url, content=data)
                assert again.status_code == 409 and again.json()["error_code"] == "FILE_ALREADY_UPLOADED"
            meta = await client.files.metadata(rec.id)
            assert meta.size == len(data)
            got = await client.files.download(rec.id)
            assert got["id"] == rec.id and got["size"] == len(data)
            assert base64.b64decode(got["content_base64"]) == data
            assert got["checksum"] == hashlib.sha256(data).hexdigest()
            # A stored file's URL is a download.
            get_url = await client.files.presigned_url(rec.id)
            async with httpx.AsyncClient(timeout=60) as raw:
                r = await raw.get(get_url)
                assert r.status_code == 200 and r.content == data
                assert r.headers["content-type"] == "application/pdf"
            other = await client.files.upload("notes/a.txt")  # the client's defaults: size 0
            small_url = await client.files.presigned_url(other.id)
            async with httpx.AsyncClient() as raw:
                assert (await raw.put(small_url, content=b"any length")).status_code == 200
            listed = await client.files.list(prefix="reports/", limit=10)
            assert [f.name for f in listed] == ["reports/q1.bin"]
            everything = await client.files.list()
            assert [f.name for f in everything] == ["notes/a.txt", "reports/q1.bin"]
            assert await client.files.delete(rec.id) is None
            with pytest.raises(NotFoundError):
                await client.files.metadata(rec.id)
            assert [f.name for f in await client.files.list()] == ["notes/a.txt"]

    run(main())


def test_signed_urls_refuse_tampering_and_other_methods(server):
    async def main():
        async with sdk(server) as client:
            rec = await client.files.upload("x.txt", content_type="text/plain", size=5)
            url = await client.files.presigned_url(rec.id, expires_in=60)
            async with httpx.AsyncClient() as raw:
                # A PUT URL does not download; a changed signature is not ours.
                r = await raw.get(url)
                assert r.status_code == 403 and r.json()["error_code"] == "SIGNED_URL_INVALID"
                tampered = url[:-2] + ("AA" if not url.endswith("AA") else "BB")
                r = await raw.put(tampered, content=b"hello")
                assert r.status_code == 403 and r.json()["error_code"] == "SIGNED_URL_INVALID"
                # The registered size is the size.
                r = await raw.put(url, content=b"hello!")
                assert r.status_code == 422, r.text
                r = await raw.put(url, content=b"hello")
                assert r.status_code == 200, r.text
            got = await client.files.download(rec.id)
            assert base64.b64decode(got["content_base64"]) == b"hello"

    run(main())


def test_uploads_past_the_limit_are_413_naming_it_and_large_ones_go_through(tmp_path):
    s = Server(tmp_path / "data", env={"ZERODB_FILE_MAX_BYTES": str(60 * 1024 * 1024)})
    try:
        big = os.urandom(50 * 1024 * 1024)

        async def main():
            async with sdk(s) as client:
                with pytest.raises(Exception) as e:
                    await client.files.upload("huge", size=60 * 1024 * 1024 + 1)
                assert getattr(e.value, "status_code", None) == 413
                rec = await client.files.upload("open")
                url = await client.files.presigned_url(rec.id)
                async with httpx.AsyncClient(timeout=120) as raw:
                    r = await raw.put(url, content=b"\0" * (60 * 1024 * 1024 + 1))
                    assert r.status_code == 413
                    assert "62914560" in r.json()["detail"], r.text
                    # 50 MB, well past the 6 MB every JSON route takes.
                    r = await raw.put(url, content=big)
                    assert r.status_code == 200, r.text
                    assert r.json()["checksum"] == hashlib.sha256(big).hexdigest()
                    got = await raw.get(await client.files.presigned_url(rec.id))
                    assert got.status_code == 200 and got.content == big
                meta = await client.files.metadata(rec.id)
                assert meta.size == len(big)
                # Too large to come back inline: the JSON download carries a URL.
                d = await client.files.download(rec.id)
                assert d["inline"] is False and d["content_base64"] == "" and d["url"]

        run(main())
    finally:
        s.stop()
