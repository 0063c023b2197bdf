"""Several geologin nodes sharing one PostgreSQL and one Redis behave as one service: a login started on
node A finishes on node B, a lockout on A holds on B, a logout on A ends the session on B, an authorization
code issued by A is redeemed at B, and a signing key rotated through any node is published by all at once."""
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
        return subprocess.run(FLASK + list(args), cwd=ROOT, env=env, input=stdin, check=True, capture_output=True,
                              text=True).stdout

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


def test_code_issued_by_node_a_is_redeemed_at_node_b_and_a_rotated_key_is_everywhere_at_once(cluster):
    """Applications talk to whichever node the load balancer picks: codes, tokens, consents and keys are in
    the shared database, never in one node's memory."""
    import base64
    import json
    from urllib.parse import parse_qs, urlencode, urlsplit

    from authlib.common.security import generate_token
    from authlib.oauth2.rfc7636 import create_s256_code_challenge
    from joserfc import jwt
    from joserfc.jwk import KeySet

    node_a, node_b = cluster
    redirect_uri = "https://grafana.example.org/login/generic_oauth"
    app = json.loads(cluster.cli("apps", "add", "Grafana", "--redirect-uri", redirect_uri, "--first-party",
                                 "--json"))
    cluster.cli("users", "create", "carol", "--password-stdin", stdin="Carol-local-pass-42\n")
    browser = requests.Session()
    browser.post(node_a + "/login", data={"csrf_token": _csrf(browser, node_a + "/login"), "username": "carol",
                                          "password": "Carol-local-pass-42"}, allow_redirects=False, timeout=10)
    verifier = generate_token(48)
    query = urlencode({"response_type": "code", "client_id": app["client_id"], "redirect_uri": redirect_uri,
                       "scope": "openid profile", "state": "s", "nonce": "n",
                       "code_challenge": create_s256_code_challenge(verifier), "code_challenge_method": "S256"})
    answer = browser.get(node_a + "/oauth/authorize?" + query, allow_redirects=False, timeout=10)
    code = parse_qs(urlsplit(answer.headers["Location"]).query)["code"][0]
    basic = base64.b64encode(f"{app['client_id']}:{app['client_secret']}".encode()).decode()
    tokens = requests.post(node_b + "/oauth/token", data={"grant_type": "authorization_code", "code": code,
                                                          "redirect_uri": redirect_uri, "code_verifier": verifier},
                           headers={"Authorization": "Basic " + basic}, timeout=10).json()
    keys_on_b = KeySet.import_key_set(requests.get(node_b + "/oauth/jwks", timeout=10).json())
    assert jwt.decode(tokens["id_token"], keys_on_b).claims["preferred_username"] == "carol"
    userinfo = requests.get(node_a + "/oauth/userinfo", headers={"Authorization": "Bearer " + tokens["access_token"]},
                            timeout=10)
    assert userinfo.json()["preferred_username"] == "carol"

    rotated = json.loads(cluster.cli("keys", "rotate", "--json"))
    for node in cluster:
        assert rotated["kid"] in {key["kid"] for key in requests.get(node + "/oauth/jwks", timeout=10).json()["keys"]}
