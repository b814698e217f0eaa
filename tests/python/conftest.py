"""Starts the zerodb-local binary for the black-box tests.

The binary comes from ZERODB_LOCAL_BIN (infra/test.sh builds it). Each test that asks for
the `server` fixture gets its own server on a free port with its own data directory.

The inference tests also start the fake LLM provider (FAKE_PROVIDER_BIN, built by
`cargo test` from tests/src/bin/fake-provider.rs), once per session, and give zerodb-local
a providers file pointing at it (`providers_toml`).
"""

import os
import signal
import socket
import subprocess
import time

import httpx
import pytest

BIN = os.environ.get("ZERODB_LOCAL_BIN")
FAKE_PROVIDER_BIN = os.environ.get("FAKE_PROVIDER_BIN")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """zerodb-local on a free port; `args` are appended to its command line and `env` is
    added to this process's environment for it."""

    def __init__(self, data_dir, args=(), env=None):
        assert BIN, "ZERODB_LOCAL_BIN is not set: run ./infra/test.sh"
        self.data_dir = str(data_dir)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [BIN, "--addr", f"127.0.0.1:{self.port}", "--data-dir", self.data_dir, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self.banner = []
        # The banner ends with a "ready" line, printed once the port is bound.
        deadline = time.time() + 60
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise AssertionError(f"zerodb-local exited early: {''.join(self.banner)}")
            self.banner.append(line)
            if line.startswith("ready"):
                break
        self.text = "".join(self.banner)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)


@pytest.fixture
def server(tmp_path):
    s = Server(tmp_path / "data")
    yield s
    if s.proc.poll() is None:
        s.stop()


def root_key(server) -> str:
    with open(os.path.join(server.data_dir, "root-key")) as f:
        return f.read().strip()


class FakeProvider:
    """The fake LLM provider process (see tests/src/fake_provider.rs for its models)."""

    def __init__(self):
        assert FAKE_PROVIDER_BIN, "FAKE_PROVIDER_BIN is not set: run ./infra/test.sh"
        self.proc = subprocess.Popen(
            [FAKE_PROVIDER_BIN, "--addr", "127.0.0.1:0"],
            stdout=subprocess.PIPE,
            text=True,
        )
        # One line, printed once the port is bound.
        line = self.proc.stdout.readline()
        if not line.startswith("ready "):
            self.proc.kill()
            raise AssertionError(f"fake-provider did not start: {line!r}")
        self.base = line.split()[1]

    def stats(self) -> dict:
        r = httpx.get(f"{self.base}/stats", timeout=5)
        r.raise_for_status()
        return r.json()

    def requests(self, model: str) -> int:
        return self.stats()["requests"].get(model, 0)

    def reset(self) -> None:
        httpx.post(f"{self.base}/stats/reset", timeout=5).raise_for_status()

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)


@pytest.fixture(scope="session")
def fake_provider():
    fake = FakeProvider()
    yield fake
    fake.stop()


# The fake's models behind aliases on both providers: `a-*` on the anthropic-kind provider,
# `o-*` on the openai-kind one. Short timeouts and one retry keep the error paths quick.
FAKE_ALIASES = {
    "echo": "echo-1",
    "429": "rate-limited",
    "busy": "busy-once",
    "500": "server-error",
    "slow": "slow",
    "cut": "cut",
    "endless": "endless",
}

# The env var naming the fake providers' key; any value is accepted by the fake.
FAKE_KEY_ENV = "FAKE_PROVIDER_KEY"


def providers_toml(path, fake, extra_aliases="") -> str:
    """Writes a providers file for `fake` to `path`; returns the path as a string."""
    lines = []
    for name, kind, base in (
        ("fa", "anthropic", f"{fake.base}/anthropic"),
        ("fo", "openai", f"{fake.base}/openai/v1"),
    ):
        lines += [
            f"[providers.{name}]",
            f'kind = "{kind}"',
            f'base_url = "{base}"',
            f'api_key_env = "{FAKE_KEY_ENV}"',
            "timeout_ms = 2000",
            "connect_timeout_ms = 1000",
            "max_retries = 1",
            "",
        ]
    lines.append("[aliases]")
    for suffix, model in FAKE_ALIASES.items():
        lines.append(f'a-{suffix} = {{ provider = "fa", model = "{model}" }}')
        lines.append(f'o-{suffix} = {{ provider = "fo", model = "{model}" }}')
    lines.append(extra_aliases)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return str(path)


def inference_server(data_dir, providers_file, env=None) -> Server:
    """zerodb-local serving inference through the providers in `providers_file`."""
    return Server(
        data_dir,
        args=["--providers", providers_file],
        env={FAKE_KEY_ENV: "fake-provider-key", **(env or {})},
    )
