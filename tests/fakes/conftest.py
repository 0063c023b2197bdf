"""Fixtures: fake DHIS2 servers run as real subprocesses on free loopback ports."""
import pytest

from tests.fakes import CALLBACK, OTHER_CALLBACK, SECRET, FakeServer  # noqa: F401

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
