"""What `make run` does, done for real: migrate a fresh instance folder, print the setup link, serve HTTP."""
import contextlib
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

from tests.conftest import TEST_DB, extra_postgres_database

ROOT = Path(__file__).resolve().parent.parent
FLASK = [sys.executable, "-m", "flask", "--app", "wsgi"]


def _env(instance):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEOLOGIN_") and k != "DATABASE_URL"}
    env.update({"GEOLOGIN_ENV": "development", "GEOLOGIN_INSTANCE": str(instance)})
    return env


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.skipif(TEST_DB != "sqlite", reason="the embedded default is SQLite")
def test_fresh_instance_migrates_prints_setup_link_and_serves(tmp_path):
    instance = tmp_path / "instance"
    env = _env(instance)
    subprocess.run(FLASK + ["db", "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True)
    tables = set(inspect(create_engine(f"sqlite:///{instance}/geologin.sqlite3")).get_table_names())
    assert {"users", "user_sessions", "audit_events", "alembic_version"} <= tables
    link = subprocess.run(FLASK + ["setup-link", "--if-needed"], cwd=ROOT, env=env, check=True,
                          capture_output=True, text=True).stdout
    assert re.search(r"http://127\.0\.0\.1:5000/setup/[\w-]{40,}", link)
    port = _free_port()
    server = subprocess.Popen(FLASK + ["run", "--port", str(port)], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=2) as response:
                    body = response.read().decode()
                    headers = response.headers
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.2)
        assert ">Log in</button>" in body and "no administrator yet" in body
        assert headers["X-Frame-Options"] == "DENY"
        assert (instance / "secret_key").exists()
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_production_refuses_to_start_without_secret_key(tmp_path):
    env = _env(tmp_path / "instance")
    env["GEOLOGIN_ENV"] = "production"
    result = subprocess.run(FLASK + ["users", "list"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_make_demo_serves_two_fake_dhis2_servers_and_says_what_to_click(tmp_path):
    """On SQLite in the first pass, on PostgreSQL (DEMO_DATABASE_URL) in the PostgreSQL pass."""
    with contextlib.ExitStack() as stack:
        env = {**_env(tmp_path), "DEMO_INSTANCE": str(tmp_path / "demo")}
        if TEST_DB == "postgresql":
            env["DEMO_DATABASE_URL"] = stack.enter_context(extra_postgres_database())
        _run_demo(env)


def _run_demo(env):
    port = _free_port()
    env["PORT"] = str(port)
    temp = Path(env["DEMO_INSTANCE"]).parent / "demo-tmp"
    temp.mkdir()
    env["TMPDIR"] = str(temp)  # the demo's temporary files land here, to be checked after it stops
    demo = subprocess.Popen([sys.executable, "scripts/demo.py"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        output = ""
        deadline = time.monotonic() + 30
        while "Press Ctrl-C" not in output and time.monotonic() < deadline and demo.poll() is None:
            output += demo.stdout.readline()
        assert "alice / Alice-pass-123" in output and "demo-admin / " in output
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=2) as response:
                    body = response.read().decode()
                break
            except OSError:
                if time.monotonic() > deadline or demo.poll() is not None:
                    raise
                time.sleep(0.2)
        assert "Ministry of Health (DHIS2 2.40)" in body and "Malaria programme (DHIS2 2.42)" in body
        from tests.realop import realop_available

        if realop_available()[0]:  # with Node and the npm package, the OpenID Connect server joins in
            assert "Log in with Health ID" in body and "alice / alice-password-at-the-op" in output
    finally:
        demo.terminate()
        demo.wait(timeout=15)
    with pytest.raises(OSError):  # geologin and the fake servers stopped with the demo
        urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=2)
    from tests.realop import CLIENT_SECRET
    left = [path for path in temp.rglob("*") if path.is_file() and CLIENT_SECRET in path.read_text(errors="replace")]
    assert left == [], "the demo left a client secret behind in its temporary files"


@pytest.mark.skipif(TEST_DB != "sqlite", reason="runs on a throwaway SQLite database")
def test_gunicorn_serves_with_the_shipped_config_in_production_mode(tmp_path):
    """What `make serve` runs: gunicorn, several workers, health and readiness, and a raw non-UTF-8 query
    string (which only a real server passes through) answered with a 400, not a 500."""
    import socket as sockets

    from tests.conftest import TEST_ENCRYPTION_KEY, TEST_SECRET_KEY

    instance = tmp_path / "instance"
    env = {**_env(instance), "GEOLOGIN_ENV": "production", "GEOLOGIN_SECRET_KEY": TEST_SECRET_KEY,
           "GEOLOGIN_ENCRYPTION_KEY": TEST_ENCRYPTION_KEY, "GEOLOGIN_WORKERS": "2", "GEOLOGIN_THREADS": "2"}
    subprocess.run(FLASK + ["db", "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True)
    port = _free_port()
    env["GEOLOGIN_BIND"] = f"127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"], cwd=ROOT,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
                    assert response.status == 200
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.2)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=5) as response:
            assert b"Log in" in response.read()
        with sockets.create_connection(("127.0.0.1", port), timeout=5) as raw:
            raw.sendall(b"GET /login?next=\x80 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            status_line = raw.recv(100).split(b"\r\n", 1)[0]
        assert status_line.startswith(b"HTTP/1.1 400"), status_line
    finally:
        server.terminate()
        output = server.communicate(timeout=20)[0]
    assert output.count("Booting worker") == 2, output


@pytest.mark.skipif(TEST_DB != "sqlite", reason="the embedded default is SQLite")
def test_reg_cli_in_the_make_run_instance_works_without_exporting_env(tmp_path):
    """`make run` made the instance in development mode; the login page then tells the person to run
    `flask --app wsgi setup-link` by hand, with no GEOLOGIN_ENV: that command must just work."""
    instance = tmp_path / "instance"
    subprocess.run(FLASK + ["db", "upgrade"], cwd=ROOT, env=_env(instance), check=True, capture_output=True)
    bare = {k: v for k, v in _env(instance).items() if k != "GEOLOGIN_ENV"}
    link = subprocess.run(FLASK + ["setup-link", "--base-url", "http://127.0.0.1:5000"], cwd=ROOT, env=bare,
                          capture_output=True, text=True)
    assert link.returncode == 0, link.stderr
    assert "http://127.0.0.1:5000/setup/" in link.stdout
    # The instance says so where an operator looks, and production can still be forced explicitly.
    assert 'ENV = "development"' in (instance / "config.py").read_text()
    forced = subprocess.run(FLASK + ["users", "list"], cwd=ROOT, env={**bare, "GEOLOGIN_ENV": "production"},
                            capture_output=True, text=True)
    assert forced.returncode == 1 and "SECRET_KEY is not set" in forced.stderr


@pytest.mark.parametrize("env, message", [
    ({"GEOLOGIN_ENV": "production"}, "SECRET_KEY is not set"),
    ({"GEOLOGIN_TIMEZONE": "Mars/Olympus"}, "is not a known time zone"),
    ({"GEOLOGIN_ENV": "production", "GEOLOGIN_SECRET_KEY": "abcdefgh" * 4}, "not random"),
])
def test_reg_config_errors_are_one_line_not_a_traceback(tmp_path, env, message):
    for command in (FLASK + ["users", "list"], [sys.executable, "-c", "import wsgi"]):
        result = subprocess.run(command, cwd=ROOT, env={**_env(tmp_path / "instance"), **env},
                                capture_output=True, text=True)
        assert result.returncode == 1, result.stderr
        assert "Traceback" not in result.stderr
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and message in lines[0], result.stderr
        assert lines[0].startswith("geologin: configuration error: ")
