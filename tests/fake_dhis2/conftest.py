"""Fixtures: fake DHIS2 servers run as real subprocesses on free loopback ports."""
import pathlib
import select
import subprocess
import sys
import tempfile
import time

import pytest
import requests

ROOT = pathlib.Path(__file__).resolve().parents[2]
SERVER = ROOT / "plugins" / "dhis2" / "fake_dhis2.py"
SECRET = "0123456789abcdef0123456789abcdef0123"
CALLBACK = "http://127.0.0.1:8765/auth/dhis2/callback"
OTHER_CALLBACK = "https://geologin.example.org/auth/dhis2/callback"


class FakeServer:
    """One ``fake_dhis2.py`` process; ``url`` is its DHIS2 base URL without trailing slash."""

    def __init__(self, *args, timeout=20):
        self.stderr = tempfile.TemporaryFile()
        cmd = [sys.executable, str(SERVER), "--host", "127.0.0.1", "--port", "0", "--quiet", *args]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=self.stderr,
                                     text=True)
        deadline = time.monotonic() + timeout
        line = ""
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if ready:
                line = self.proc.stdout.readline()
                break
            if self.proc.poll() is not None:
                break
        prefix = "fake-dhis2 listening on "
        if not line.startswith(prefix):
            self.stop()
            self.stderr.seek(0)
            raise RuntimeError(f"fake DHIS2 did not start: {line!r}\n"
                               f"{self.stderr.read().decode(errors='replace')}")
        self.url = line[len(prefix):].strip().rstrip("/")
        self.origin = "/".join(self.url.split("/")[:3])

    def control(self, what, payload=None, method="POST"):
        resp = requests.request(method, f"{self.origin}/__fake__/{what}", json=payload, timeout=5)
        resp.raise_for_status()
        return resp.json()

    def reset(self):
        return self.control("reset")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc.stdout:
            self.proc.stdout.close()


SERVERS = {
    # name: command-line arguments
    "v234": ["--version", "2.34.7", "--client", f"geologin:{SECRET}:{CALLBACK}"],
    "v237": ["--version", "2.37.9", "--client", f"geologin:{SECRET}:{CALLBACK},{OTHER_CALLBACK}"],
    "v240": ["--version", "2.40.3", "--base-path", "/dhis",
             "--client", f"geologin:{SECRET}:{CALLBACK}"],
    "v2410": ["--version", "2.41.0"],
    "v242": ["--version", "2.42.0", "--base-path", "/dhis",
             "--client", f"geologin:{SECRET}:{CALLBACK},{OTHER_CALLBACK}"],
    "v2425": ["--version", "2.42.5", "--client", f"geologin:{SECRET}:{CALLBACK}"],
    "v243": ["--version", "2.43.0", "--client", f"geologin:{SECRET}:{CALLBACK}"],
}


@pytest.fixture(scope="session")
def fake_servers():
    """Starts servers lazily, once per test session; ``get(name)`` returns a reset server."""
    started = {}

    def get(name):
        if name not in started:
            started[name] = FakeServer(*SERVERS[name])
        server = started[name]
        server.reset()
        return server

    yield get
    for server in started.values():
        server.stop()


def _server_fixture(name):
    @pytest.fixture
    def fixture(fake_servers):
        return fake_servers(name)
    return fixture


v234 = _server_fixture("v234")
v237 = _server_fixture("v237")
v240 = _server_fixture("v240")
v2410 = _server_fixture("v2410")
v242 = _server_fixture("v242")
v2425 = _server_fixture("v2425")
v243 = _server_fixture("v243")


@pytest.fixture
def start_fake():
    """Factory for one-off servers (stopped at the end of the test)."""
    servers = []

    def start(*args):
        server = FakeServer(*args)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
