"""Real-browser tests: headless Debian Chromium, driven by Playwright for Python, against geologin and fake
DHIS2 servers running as real processes on loopback.

- ``pytest -m browser`` runs only these. Without ``/usr/bin/chromium`` or the ``playwright`` package they
  skip with a message saying how to enable them; when ``CI`` is set they fail instead.
- They run in the SQLite pass of ``make test`` only: each geologin process has its own SQLite database in
  its instance folder anyway, so the PostgreSQL pass would repeat them for nothing.
- A failed test leaves a screenshot and the page's HTML (plus the geologin server logs) in
  ``test-artifacts/browser/``; the folder is printed at the end of the run and by ``.ci/run``.
- ``GEOLOGIN_SCREENSHOTS=docs/screenshots`` (``make screenshots``) makes the journeys save one PNG per step.
"""
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import TEST_DB
from tests.fakes import SECRET, FakeServer

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
CHROMIUM = "/usr/bin/chromium"
# Without these, Chromium's connection attempts to the (closed) network slow every start.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1100, "height": 800}
ARTIFACTS = ROOT / "test-artifacts" / "browser"
AXE_JS = HERE / "node_modules" / "axe-core" / "axe.min.js"
IN_CI = bool(os.environ.get("CI"))
HOW_TO_ENABLE = ("to run them: apt-get install chromium chromium-driver (Debian), then "
                 "pip install -e '.[test]' (or make install-test)")
FLASK = [sys.executable, "-m", "flask", "--app", "wsgi"]
ADMIN = ("root", "Correct-horse-battery-9")
ALICE = ("alice", "Alice-pass-123")  # the fake DHIS2's default users
BOB = ("bob", "Bob-pass-123")
DHIS2_ADMIN = ("admin", "district")
ALICE_UID = "xE7jOejl9FI"
LEGACY_VERSION, OIDC_VERSION = "2.40.3", "2.42.5"
MOH, MALARIA = "Ministry of Health (DHIS2 2.40)", "Malaria programme (DHIS2 2.42)"  # provider labels

_SAVED = pytest.StashKey()  # artifact files written in this run
_RUNNING = []  # geologin servers alive now: their logs go with a failure's artifacts


def unavailable(message):
    """Skip, or fail when CI is set: CI must never pass by skipping the browser tests."""
    if IN_CI:
        pytest.fail(f"{message} (CI is set, so the browser tests must run)", pytrace=False)
    pytest.skip(message)


# -- pytest hooks ----------------------------------------------------------------------------------
def pytest_collection_modifyitems(config, items):
    browser_items = [item for item in items if item.get_closest_marker("browser")]
    if not browser_items:
        return
    if TEST_DB != "sqlite":
        skip = pytest.mark.skip(reason="browser tests run once, in the SQLite pass of make test (each geologin "
                                       "process under test keeps its own SQLite database)")
        for item in browser_items:
            item.add_marker(skip)
        return
    shutil.rmtree(ARTIFACTS, ignore_errors=True)  # only this run's failures are listed


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    saved = config.stash.get(_SAVED, [])
    if saved:
        terminalreporter.section("browser test artifacts")
        terminalreporter.write_line(f"Screenshots and page HTML of failed browser tests are in {ARTIFACTS}:")
        for path in saved:
            terminalreporter.write_line(f"  {path.name}")


def _failed(item):
    return any(getattr(getattr(item, f"report_{when}", None), "failed", False) for when in ("setup", "call"))


def _save_artifacts(item, pages):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^\w.-]+", "_", item.name).strip("_")
    saved = item.config.stash.setdefault(_SAVED, [])
    for number, page in enumerate(pages, 1):
        stem = name if number == 1 else f"{name}-{number}"
        try:
            page.screenshot(path=ARTIFACTS / f"{stem}.png", full_page=True)
            saved.append(ARTIFACTS / f"{stem}.png")
            (ARTIFACTS / f"{stem}.html").write_text(f"<!-- {page.url} -->\n{page.content()}", encoding="utf-8")
            saved.append(ARTIFACTS / f"{stem}.html")
        except Exception as error:  # a crashed page must not hide the test's own failure
            (ARTIFACTS / f"{stem}.error.txt").write_text(f"{page.url}\n{error!r}\n", encoding="utf-8")
            saved.append(ARTIFACTS / f"{stem}.error.txt")
    # The logs of the geologin servers this test's pages were on (of every running one if none).
    servers = [server for server in _RUNNING if any(page.url.startswith(server.url + "/") for page in pages)]
    for server in servers or _RUNNING:
        target = ARTIFACTS / f"{name}.{server.name}.log"
        target.write_text(server.log_tail(), encoding="utf-8")
        saved.append(target)


# -- the browser -----------------------------------------------------------------------------------
@pytest.fixture(scope="package")
def browser():
    if not os.access(CHROMIUM, os.X_OK):
        unavailable(f"browser tests need Chromium at {CHROMIUM}; {HOW_TO_ENABLE}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable(f"browser tests need the playwright package; {HOW_TO_ENABLE}")
    with sync_playwright() as playwright:
        # Debian's Chromium, never a Playwright download (`playwright install` does not work here).
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def open_page(browser, request):
    """``open_page(**context_options)``: a page in a new browser context (its own cookies), 1100x800.
    When the test fails, every page it opened is saved to test-artifacts/browser/."""
    contexts = []

    def open_(**options):
        context = browser.new_context(**{"viewport": VIEWPORT, **options})  # a test may set its own viewport
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield open_
    if _failed(request.node):
        _save_artifacts(request.node, [page for context in contexts for page in context.pages])
    for context in contexts:
        context.close()


@pytest.fixture
def page(open_page):
    return open_page()


def step_screenshot(page, name):
    """One picture per journey step for docs/screenshots/ (``make screenshots``); nothing otherwise."""
    folder = os.environ.get("GEOLOGIN_SCREENSHOTS")
    if folder:
        folder = Path(folder) if Path(folder).is_absolute() else ROOT / folder
        folder.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=folder / f"{name}.png")


def log_in_with_password(page, geologin, username, password):
    page.goto(geologin.url + "/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in", exact=True).click()


def axe_script():
    """Path of axe-core's axe.min.js from the npm registry (make browser-deps), or skip/fail."""
    if not AXE_JS.exists():
        npm = shutil.which("npm")
        unavailable("the accessibility check needs axe-core in tests/browser/node_modules: run make browser-deps"
                    + ("" if npm else " (it needs Node.js and npm: apt-get install nodejs npm)"))
    return AXE_JS


# -- processes under test --------------------------------------------------------------------------
def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Geologin:
    """geologin as `make run` serves it: a fresh instance folder, migrated, then `flask run` on a free
    loopback port, with PUBLIC_URL http://127.0.0.1:PORT (DHIS2 2.42+ refuses "localhost" redirect URIs)."""

    def __init__(self, folder, name="geologin"):
        self.name = name
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("GEOLOGIN_") and k != "DATABASE_URL"}
        self.env.update({
            "GEOLOGIN_ENV": "development",
            "GEOLOGIN_INSTANCE": str(self.folder / "instance"),
            "GEOLOGIN_PUBLIC_URL": self.url,
            "GEOLOGIN_ALLOW_INSECURE_HTTP": "1",
            "GEOLOGIN_LOGIN_RATE_LIMIT": "1000 per minute",  # every request here comes from 127.0.0.1
        })
        self.flask("db", "upgrade")
        self.log = self.folder / "geologin.log"
        self._log_file = open(self.log, "wb")
        self.proc = subprocess.Popen(FLASK + ["run", "--host", "127.0.0.1", "--port", str(self.port)], cwd=ROOT,
                                     env=self.env, stdout=self._log_file, stderr=subprocess.STDOUT)
        _RUNNING.append(self)
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(self.url + "/login", timeout=2):
                    break
            except (OSError, urllib.error.URLError):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"geologin did not start on {self.url}:\n{self.log_tail()}")
                time.sleep(0.1)

    def flask(self, *args, stdin=None):
        """Run a `flask --app wsgi` command on this instance; return its output, fail the test on error."""
        result = subprocess.run(FLASK + list(args), cwd=ROOT, env=self.env, input=stdin, capture_output=True,
                                text=True, timeout=60)
        if result.returncode:
            raise AssertionError(f"flask {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
        return result.stdout

    def add_dhis2(self, slug, label, server, *, allow=()):
        # Enabled explicitly: some journeys register a server that is down on purpose.
        self.flask("providers", "add", "dhis2", "--slug", slug, "--label", label, "--base-url", server.url + "/",
                   "--client-id", "geologin", "--client-secret-stdin", "--enabled", stdin=SECRET + "\n")
        if allow:
            self.flask("users", "allow", *allow, slug)

    def log_tail(self, lines=300):
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:]) + "\n"
        except OSError:
            return ""

    def stop(self):
        if self in _RUNNING:
            _RUNNING.remove(self)
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log_file.close()


@pytest.fixture(scope="package")
def start_geologin(browser):
    """``start_geologin(name)``: a new geologin process with its own instance folder; stopped after the
    browser tests. Depends on ``browser`` so nothing starts when the tests are skipped."""
    base = Path(tempfile.mkdtemp(prefix="geologin-browser-"))
    started = []

    def start(name):
        started.append(Geologin(base / name, name=name))
        return started[-1]

    yield start
    for server in started:
        server.stop()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="package")
def start_dhis2(browser):
    """``start_dhis2(version, geologin, *slugs)``: a fake DHIS2 process whose OAuth client "geologin"
    (secret tests.fakes.SECRET) accepts geologin's callback for each slug. Users: alice, bob, admin."""
    started = []

    def start(version, geologin, *slugs, base_path=None):
        uris = ",".join(f"{geologin.url}/auth/{slug}/callback" for slug in slugs)
        args = ["--version", version, "--client", f"geologin:{SECRET}:{uris}"]
        started.append(FakeServer(*args, *(["--base-path", base_path] if base_path else [])))
        return started[-1]

    yield start
    for server in started:
        server.stop()
