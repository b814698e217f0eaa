"""Starts the zerodb-local binary for the black-box tests.

The binary comes from ZERODB_LOCAL_BIN (infra/test.sh builds it). Each test that asks for
the `server` fixture gets its own server on a free port with its own data directory.
"""

import os
import signal
import socket
import subprocess
import time

import pytest

BIN = os.environ.get("ZERODB_LOCAL_BIN")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, data_dir):
        assert BIN, "ZERODB_LOCAL_BIN is not set: run ./infra/test.sh"
        self.data_dir = str(data_dir)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [BIN, "--addr", f"127.0.0.1:{self.port}", "--data-dir", self.data_dir],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
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
