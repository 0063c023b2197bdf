"""End-to-end tests of geologin's OpenID provider (``pytest -m e2e``): geologin, a fake DHIS2 and real
relying parties (Apache mod_auth_openidc, npm openid-client) as processes on loopback; see
relying_parties.py. They run in the SQLite pass of ``make test`` only: the geologin process under test keeps
its own SQLite database in its instance folder, so the PostgreSQL pass would repeat them for nothing."""
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.browser.conftest import Geologin
from tests.conftest import TEST_DB
from tests.fakes import SECRET, FakeServer

ALICE_PASSWORD = "Alice-local-pass-42"  # her geologin password; at the fake DHIS2 she is alice / Alice-pass-123
ALICE_EMAIL, ALICE_NAME = "alice@example.org", "Alice Example"
DHIS2_ALICE = ("alice", "Alice-pass-123")
DHIS2_SLUG, DHIS2_LABEL = "moh", "Ministry of Health"


def pytest_collection_modifyitems(config, items):
    if TEST_DB == "sqlite":
        return
    skip = pytest.mark.skip(reason="end-to-end tests run once, in the SQLite pass of make test (the geologin "
                                   "process under test keeps its own SQLite database)")
    for item in items:
        if item.get_closest_marker("e2e"):
            item.add_marker(skip)


@pytest.fixture(scope="package")
def world():
    """One geologin process (PUBLIC_URL its loopback URL) with alice (a password, and allowed to log in
    through the fake DHIS2 2.40 "moh"), and that fake DHIS2. Started once for the end-to-end tests."""
    folder = Path(tempfile.mkdtemp(prefix="geologin-e2e-"))
    geologin = Geologin(folder / "geologin", name="geologin-e2e")
    dhis2 = None
    try:
        geologin.flask("users", "create", "alice", "--password-stdin", "--email", ALICE_EMAIL,
                       "--display-name", ALICE_NAME, stdin=ALICE_PASSWORD + "\n")
        dhis2 = FakeServer("--version", "2.40.3", "--client",
                           f"geologin:{SECRET}:{geologin.url}/auth/{DHIS2_SLUG}/callback")
        geologin.flask("providers", "add", "dhis2", "--slug", DHIS2_SLUG, "--label", DHIS2_LABEL, "--base-url",
                       dhis2.url + "/", "--client-id", "geologin", "--client-secret-stdin", "--enabled",
                       stdin=SECRET + "\n")
        geologin.flask("users", "allow", "alice", DHIS2_SLUG)
        yield geologin, dhis2
    finally:
        geologin.stop()
        if dhis2:
            dhis2.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def geologin(world):
    return world[0]
