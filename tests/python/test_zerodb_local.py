"""Black-box tests of the zerodb-local binary, driven with httpx as seed 000 does.

The binary comes from ZERODB_LOCAL_BIN (infra/test.sh builds it). Each test starts its own
server on a free port with its own data directory (the `server` fixture, conftest.py).
"""

import os
import stat
import subprocess

import httpx

from conftest import BIN, Server, root_key


def test_first_start_prints_banner_and_writes_root_key_0600(server):
    assert f"listening on http://127.0.0.1:{server.port}" in server.text
    assert server.data_dir in server.text
    key = root_key(server)
    assert key.startswith("sk_")
    assert key in server.text, "the first start shows the root key once"
    mode = stat.S_IMODE(os.stat(os.path.join(server.data_dir, "root-key")).st_mode)
    assert mode == 0o600
    r = httpx.get(f"{server.base}/api/v1/health")
    assert r.status_code == 200 and r.json()["status"] == "healthy"


def test_seed_000_steps_1_and_6_with_root_key_as_bearer(server):
    BASE = server.base
    ROOT_KEY = root_key(server)
    ROOT_HEADERS = {"Authorization": f"Bearer {ROOT_KEY}", "Content-Type": "application/json"}

    # Step 1, as the seed writes it.
    resp = httpx.post(
        f"{BASE}/api/v1/auth/keys",
        headers=ROOT_HEADERS,
        json={
            "name": "research-agent-run-42",
            "ttl_seconds": 3600,
            "scopes": ["memory:write:session/run-42", "memory:read:session/run-42", "inference:call"],
        },
    )
    resp.raise_for_status()
    assert resp.status_code == 201
    agent_key = resp.json()["key"]
    key_id = resp.json()["id"]
    agent_headers = {"X-API-Key": agent_key, "Content-Type": "application/json"}

    # The complete example's key (unrestricted memory scopes) too.
    full = httpx.post(
        f"{BASE}/api/v1/auth/keys",
        headers=ROOT_HEADERS,
        json={"name": "research-agent", "ttl_seconds": 3600, "scopes": ["memory:write", "memory:read", "inference:call"]},
    )
    assert full.status_code == 201, full.text

    ok = httpx.post(f"{BASE}/api/v1/auth/token", headers=agent_headers)
    assert ok.status_code == 200, ok.text

    # Step 6: revoke with the root key.
    httpx.delete(f"{BASE}/api/v1/auth/keys/{key_id}", headers={"Authorization": f"Bearer {ROOT_KEY}"}).raise_for_status()

    after = httpx.post(f"{BASE}/api/v1/auth/token", headers=agent_headers)
    assert after.status_code == 401
    assert after.json()["error_code"] == "AUTH_003"


def test_accounts_create_works_while_the_server_runs_and_tenants_are_isolated(server):
    out = subprocess.run(
        [BIN, "accounts", "create", "--name", "tenant-b", "--data-dir", server.data_dir],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = dict(line.split(": ", 1) for line in out.stdout.strip().splitlines())
    b_key = lines["root_key"]
    assert b_key.startswith("sk_") and lines["account_id"].startswith("acct_")

    a_headers = {"Authorization": f"Bearer {root_key(server)}"}
    created = httpx.post(f"{server.base}/api/v1/auth/keys", headers=a_headers, json={"name": "a-key", "scopes": ["memory:read"]})
    assert created.status_code == 201
    a_key_id = created.json()["id"]

    b_headers = {"X-API-Key": b_key}
    listed = httpx.get(f"{server.base}/api/v1/auth/keys", headers=b_headers)
    assert listed.status_code == 200
    assert [k["id"] for k in listed.json()["keys"]] == [lines["root_key_id"]]
    assert httpx.get(f"{server.base}/api/v1/auth/keys/{a_key_id}", headers=b_headers).status_code == 404
    assert httpx.delete(f"{server.base}/api/v1/auth/keys/{a_key_id}", headers=b_headers).status_code == 404


def test_graceful_shutdown_and_data_survives_restart(server, tmp_path):
    headers = {"Authorization": f"Bearer {root_key(server)}"}
    created = httpx.post(f"{server.base}/api/v1/auth/keys", headers=headers, json={"name": "durable", "scopes": ["memory:read"]})
    assert created.status_code == 201
    key = created.json()["key"]
    assert server.stop() == 0, "SIGTERM shuts down cleanly"

    again = Server(server.data_dir)
    try:
        assert "root key: in " in again.text, "a restart does not mint a new root key"
        assert httpx.post(f"{again.base}/api/v1/auth/token", headers={"X-API-Key": key}).status_code == 200
    finally:
        again.stop()


def test_errors_are_json_with_codes(server):
    r = httpx.get(f"{server.base}/api/v1/no/such/route")
    assert r.status_code == 404 and r.json()["error_code"] == "API_404"
    r = httpx.get(f"{server.base}/api/v1/auth/keys")
    assert r.status_code == 401 and r.json()["error_code"] == "AUTH_001"
    r = httpx.put(f"{server.base}/api/v1/auth/keys", headers={"X-API-Key": root_key(server)})
    assert r.status_code == 405
