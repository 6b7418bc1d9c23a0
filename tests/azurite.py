"""A real Azurite for the ledger and report tests: started by scripts/azurite.sh on free loopback ports
(its Table and Blob services), data in memory.

The session fixture ``azurite`` yields an ``Azurite``; a test can ``stop()`` and ``start()`` it to
simulate a ledger outage (a restart comes back empty), and ``fresh_service`` gives a client over
empty tables so tests do not see each other's rows.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "azurite.sh"
BINARY = REPO / "node_modules" / ".bin" / "azurite-table"
BLOB_BINARY = REPO / "node_modules" / ".bin" / "azurite-blob"
# Azurite's development account key: public, the same in every Azurite (not a secret).
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class Azurite:
    def __init__(self, port: int | None = None, blob_port: int | None = None):
        self.port = port or free_port()
        self.blob_port = blob_port or free_port()
        self.process: subprocess.Popen | None = None
        self._log = tempfile.TemporaryFile()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/devstoreaccount1"

    @property
    def blob_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.blob_port}/devstoreaccount1"

    @property
    def connection_string(self) -> str:
        return (f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={DEV_KEY};"
                f"TableEndpoint={self.endpoint};BlobEndpoint={self.blob_endpoint}")

    def start(self, timeout: float = 30) -> None:
        if not (BINARY.exists() and BLOB_BINARY.exists()):
            pytest.fail(f"Azurite is not installed: run `npm ci` in {REPO} (it installs {BINARY.relative_to(REPO)})")
        # Own process group, so stop() ends the script and the node process it started, nothing else.
        self.process = subprocess.Popen(["bash", str(SCRIPT), "--port", str(self.port), "--blob-port",
                                         str(self.blob_port)], cwd=REPO,
                                        stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while not (accepts(self.port) and accepts(self.blob_port)):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                self._log.seek(0)
                pytest.fail(f"Azurite did not start on 127.0.0.1:{self.port}:\n{self._log.read().decode()}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None
        deadline = time.monotonic() + 10
        while (accepts(self.port) or accepts(self.blob_port)) and time.monotonic() < deadline:  # node may outlive bash
            time.sleep(0.05)


@pytest.fixture(scope="session")
def azurite():
    server = Azurite()
    server.start()
    yield server
    server.stop()


def fresh_service(server: Azurite):
    """A client over an Azurite with no ledger tables (the ledger creates them on its first write)."""
    from azure.data.tables import TableServiceClient

    from haymaker.ledger import AGENTS, CLIENT_OPTIONS, EVENTS, RUNS

    if server.process is None:  # a test that stopped it failed before restarting it
        server.start()
    service = TableServiceClient.from_connection_string(server.connection_string, **CLIENT_OPTIONS)
    for name in (RUNS, AGENTS, EVENTS):
        service.delete_table(name)
    return service
