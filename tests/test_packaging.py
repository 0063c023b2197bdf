"""Installed the way docs/deploy.md says (a wheel built from the repository, in a fresh venv, run from a
folder that is not the checkout), geologin serves the whole app: pages, static files, bundled plugins."""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time

import pytest
import requests

from tests.conftest import STRONG_PASSWORD, TEST_DB
from geologin import ROOT

pytestmark = pytest.mark.skipif(TEST_DB != "sqlite", reason="packaging does not depend on the database")

SOURCES = ("setup.py", "setup.cfg", "pyproject.toml", "README.md", "requirements.lock", "geologin", "templates",
           "static", "plugins", "tests")


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A fresh venv with geologin installed from a wheel built out of a copy of the repository."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"
    source.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.mo", "node_modules"))
        else:
            shutil.copy(ROOT / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "-w", str(tmp / "dist"), str(source)], check=True, cwd=tmp, capture_output=True)
    wheel = next((tmp / "dist").glob("geologin-*.whl"))
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check",
                    "-c", str(ROOT / "requirements.lock"), str(wheel)], check=True, capture_output=True)
    run = tmp / "somewhere-else"
    run.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEOLOGIN_") and k not in ("DATABASE_URL",
                                                                                             "PYTHONPATH")}
    env.update({"GEOLOGIN_ENV": "development", "PATH": f"{venv / 'bin'}{os.pathsep}{env['PATH']}"})
    return venv, run, env


def _dockerfile_command(instruction):
    """The exec-form command of a Dockerfile instruction (CMD, or HEALTHCHECK's CMD), as a list."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    line = next(line for line in text.splitlines() if line.startswith(instruction + " "))
    return json.loads(line[line.index("["):])


def _geologin(installed, *args, stdin=None):
    venv, run, env = installed
    return subprocess.run([str(venv / "bin" / "geologin"), *args], cwd=run, env=env, input=stdin,
                          capture_output=True, text=True)


def test_reg_the_installed_wheel_serves_the_whole_app_from_any_folder(installed):
    venv, run, env = installed
    found = subprocess.run([str(venv / "bin" / "python"), "-c", "import geologin; print(geologin.__file__)"],
                           cwd=run, env=env, capture_output=True, text=True, check=True).stdout
    assert str(venv) in found and str(ROOT) not in found  # the installed copy, not the checkout
    assert _geologin(installed, "db", "upgrade").returncode == 0
    assert (run / "instance" / "geologin.sqlite3").is_file()  # ./instance of the folder it runs in
    created = _geologin(installed, "users", "create", "alice", "--password-stdin", stdin=STRONG_PASSWORD + "\n")
    assert created.returncode == 0, created.stderr
    types = _geologin(installed, "providers", "types").stdout
    assert re.search(r"^dhis2\b", types, re.M) and re.search(r"^oidc\b", types, re.M), types
    port = _free_port()
    env = {**env, "GEOLOGIN_BIND": f"127.0.0.1:{port}", "GEOLOGIN_WORKERS": "2"}
    server = subprocess.Popen(_dockerfile_command("CMD"), cwd=run, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)  # what the container image runs
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                ready = requests.get(base + "/readyz", timeout=5)
                break
            except (requests.ConnectionError, requests.Timeout):  # workers still booting on a busy machine
                assert time.monotonic() < deadline and server.poll() is None, server.stderr.read()
                time.sleep(0.2)
        assert ready.status_code == 200, ready.text
        healthcheck = _dockerfile_command("HEALTHCHECK")
        assert subprocess.run(healthcheck, cwd=run, env=env, capture_output=True).returncode == 0
        browser = requests.Session()
        page = browser.get(base + "/login", timeout=5)
        assert page.status_code == 200 and 'name="password"' in page.text
        assert browser.get(base + "/static/geologin.css", timeout=5).status_code == 200
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.text).group(1)
        login = browser.post(base + "/login", data={"csrf_token": token, "username": "alice",
                                                   "password": STRONG_PASSWORD}, timeout=10, allow_redirects=False)
        assert login.status_code == 302
        assert "alice" in browser.get(base + "/", timeout=5).text
        french = browser.get(base + "/", headers={"Accept-Language": "fr"}, timeout=5).text
        assert "Connecté en tant que alice" in french  # the compiled catalogs are in the wheel too
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_the_wheel_carries_the_plugin_kit_and_no_test_tooling(installed):
    """Built from a copy that holds tests/ (the fake servers among them), the wheel installs the plugin kit
    plugin authors import, and neither a ``tests`` package nor any fake server or conftest."""
    venv, _, _ = installed
    site = next((venv / "lib").glob("python*/site-packages"))
    assert (site / "geologin" / "providers" / "testing" / "__init__.py").is_file()
    assert not (site / "tests").exists()
    tooling = [str(path.relative_to(site)) for path in (site / "geologin").rglob("*")
               if "fake" in path.name.lower() or path.name == "conftest.py"]
    assert tooling == []


def test_reg_the_installed_command_reports_config_errors_in_one_line(installed):
    venv, run, env = installed
    result = subprocess.run([str(venv / "bin" / "geologin"), "users", "list"], cwd=run,
                            env={**env, "GEOLOGIN_ENV": "production"}, capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "geologin: configuration error: " + result.stderr.split("geologin: configuration error: ", 1)[1].strip()]
