"""Several geologin nodes sharing one PostgreSQL and one Redis behave as one service: a login started on
node A finishes on node B, a lockout on A holds on B, and a logout on A ends the session on B."""
import os
import re
import socket
import subprocess
import sys
import time

import pytest
import requests

from tests.conftest import TEST_DB, TEST_ENCRYPTION_KEY, TEST_SECRET_KEY, extra_postgres_database
from tests.fakes import ROOT, SECRET, Dhis2User, FakeServer

pytestmark = [pytest.mark.multinode,
              pytest.mark.skipif(not (os.environ.get("GEOLOGIN_TEST_DATABASE_URL")
                                      and os.environ.get("GEOLOGIN_TEST_REDIS_URL")),
                                 reason="needs GEOLOGIN_TEST_DATABASE_URL and GEOLOGIN_TEST_REDIS_URL "
                                        "(scripts/throwaway-postgres scripts/throwaway-redis make test)"),
              pytest.mark.skipif(TEST_DB == "postgresql", reason="ran in the first pass (it always uses PostgreSQL)")]
FLASK = [sys.executable, "-m", "flask", "--app", "wsgi"]


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def shared_database():
    with extra_postgres_database() as url:
        yield url


@pytest.fixture(scope="module")
def cluster(shared_database, tmp_path_factory):
    """Two gunicorn nodes on different ports, one PostgreSQL, one Redis, one fake DHIS2 2.40."""
    ports = [_free_port(), _free_port()]
    public = f"http://127.0.0.1:{ports[0]}"  # what the load balancer is called; both nodes agree
    redis_url = os.environ["GEOLOGIN_TEST_REDIS_URL"]
    import redis
    redis.Redis.from_url(redis_url).flushdb()
    dhis2 = FakeServer("--version", "2.40.3", "--client", f"geologin:{SECRET}:{public}/auth/moh/callback")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEOLOGIN_")}
    # Development only for plain http on loopback (no TLS here); every key is given, as in production.
    env.update({"GEOLOGIN_ENV": "development", "GEOLOGIN_SECRET_KEY": TEST_SECRET_KEY,
                "GEOLOGIN_ENCRYPTION_KEY": TEST_ENCRYPTION_KEY, "DATABASE_URL": shared_database,
                "GEOLOGIN_REDIS_URL": redis_url, "GEOLOGIN_PUBLIC_URL": public, "GEOLOGIN_ALLOW_INSECURE_HTTP": "1",
                "GEOLOGIN_LOCKOUT_MAX_FAILURES": "3", "GEOLOGIN_WORKERS": "2", "GEOLOGIN_THREADS": "2",
                "GEOLOGIN_INSTANCE": str(tmp_path_factory.mktemp("instance"))})

    def cli(*args, stdin=None):
        subprocess.run(FLASK + list(args), cwd=ROOT, env=env, input=stdin, check=True, capture_output=True,
                       text=True)

    cli("db", "upgrade")
    cli("users", "create", "alice", "--no-password")
    cli("users", "create", "bob", "--password-stdin", stdin="Bob-local-pass-42\n")
    cli("providers", "add", "dhis2", "--slug", "moh", "--label", "MoH", "--base-url", dhis2.url,
        "--generation", "legacy", "--client-secret-stdin", stdin=SECRET + "\n")
    cli("users", "allow", "alice", "moh")
    nodes = []
    for port in ports:
        nodes.append(subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
                                      cwd=ROOT, env={**env, "GEOLOGIN_BIND": f"127.0.0.1:{port}"},
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    deadline = time.monotonic() + 40
    for url in urls:
        while True:
            try:
                if requests.get(url + "/readyz", timeout=2).status_code == 200:
                    break
            except (requests.ConnectionError, requests.Timeout):  # not listening yet, or its workers still booting
                pass
            assert time.monotonic() < deadline, "a node did not become ready"
            time.sleep(0.2)
    cluster = _Cluster(urls)
    cluster.cli = cli
    yield cluster
    for node in nodes:
        node.terminate()
    for node in nodes:
        node.wait(20)
    dhis2.stop()


class _Cluster(list):
    """The nodes' URLs, plus ``cli``: a flask command run against the shared database (an admin's shell)."""


def _csrf(browser, url):
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', browser.get(url, timeout=10).text).group(1)


def _logged_in_as(browser, node):
    response = browser.get(node + "/", allow_redirects=False, timeout=10)
    return response.status_code == 200 and re.search(r"Logged in as (\w+)", response.text).group(1)


def test_login_started_on_node_a_finishes_on_node_b_and_logout_on_a_ends_it_on_b(cluster):
    node_a, node_b = cluster
    browser = requests.Session()  # cookies for 127.0.0.1 go to both ports, as a browser's would
    start = browser.post(node_a + "/auth/start", data={"csrf_token": _csrf(browser, node_a + "/login"),
                                                       "provider": "moh"}, allow_redirects=False, timeout=10)
    back = Dhis2User("alice", "Alice-pass-123").authorize(start.headers["Location"])
    assert back.startswith(node_a + "/auth/moh/callback?")
    landing = browser.get(node_b + back[len(node_a):], allow_redirects=False, timeout=10)  # the LB picked B
    assert landing.status_code == 302 and landing.headers["Location"] == "/"
    assert _logged_in_as(browser, node_b) == "alice" and _logged_in_as(browser, node_a) == "alice"
    stolen = dict(browser.cookies)
    logout = browser.post(node_a + "/logout", data={"csrf_token": _csrf(browser, node_a + "/")},
                          allow_redirects=False, timeout=10)
    assert logout.status_code == 302
    replay = requests.Session()
    replay.cookies.update(stolen)
    assert _logged_in_as(replay, node_b) is False


def test_lockout_on_node_a_holds_on_node_b(cluster):
    node_a, node_b = cluster
    browser = requests.Session()
    for _ in range(3):
        response = browser.post(node_a + "/login", data={"csrf_token": _csrf(browser, node_a + "/login"),
                                                         "username": "bob", "password": "Wrong-password-123"},
                                allow_redirects=False, timeout=10)
        assert response.status_code == 400
    on_b = browser.post(node_b + "/login", data={"csrf_token": _csrf(browser, node_b + "/login"),
                                                 "username": "bob", "password": "Bob-local-pass-42"},
                        allow_redirects=False, timeout=10)
    assert on_b.status_code == 429 and "Too many failed attempts" in on_b.text


def test_a_provider_disabled_anywhere_is_gone_from_every_node_at_once(cluster):
    """Each worker caches the usable providers; a change from anywhere (here a CLI command, as from another
    machine) is seen by every worker of every node at its next request."""
    for node in cluster:
        for _ in range(6):  # every worker of the node has now cached the provider
            assert 'value="moh"' in requests.get(node + "/login", timeout=10).text
    cluster.cli("providers", "disable", "moh")
    try:
        for node in cluster:
            for _ in range(6):
                assert 'value="moh"' not in requests.get(node + "/login", timeout=10).text
            browser = requests.Session()
            start = browser.post(node + "/auth/start", data={"csrf_token": _csrf(browser, node + "/login"),
                                                             "provider": "moh"}, allow_redirects=False, timeout=10)
            assert start.status_code == 302 and start.headers["Location"].endswith("/login")
    finally:
        cluster.cli("providers", "enable", "moh")
    assert all('value="moh"' in requests.get(node + "/login", timeout=10).text for node in cluster)
