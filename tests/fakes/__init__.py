"""Fakes of the servers geologin talks to, for tests and the demo (never shipped: tests/ is not packaged).
``dhis2`` is a fake DHIS2 server; ``FakeServer`` runs it as a real process on a free loopback port for any
test that needs one."""
import pathlib
import select
import subprocess
import sys
import tempfile
import time

import requests

ROOT = pathlib.Path(__file__).resolve().parents[2]
SERVER = "tests.fakes.dhis2"  # run as a module from ROOT
SECRET = "0123456789abcdef0123456789abcdef0123"
CALLBACK = "http://127.0.0.1:8765/auth/dhis2/callback"
OTHER_CALLBACK = "https://geologin.example.org/auth/dhis2/callback"


def stop_process(proc):
    """Stop a server process started by a test (terminate, then kill), and close its output pipe."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    if proc.stdout:
        proc.stdout.close()


class FakeServer:
    """One fake DHIS2 process (``python -m tests.fakes.dhis2``); ``url`` is its DHIS2 base URL without trailing
    slash."""

    def __init__(self, *args, timeout=20):
        self.stderr = tempfile.TemporaryFile()
        cmd = [sys.executable, "-m", SERVER, "--host", "127.0.0.1", "--port", "0", "--quiet", *args]
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
        stop_process(self.proc)


class Dhis2User:
    """A person at a browser on the DHIS2 side: signs in on DHIS2's login page, then clicks Authorize or
    Deny (legacy) or ticks the consent boxes (2.42+). Returns where DHIS2 sends the browser back."""

    def __init__(self, username, password):
        self.username, self.password = username, password
        self.browser = requests.Session()

    def _origin(self, url):
        return "/".join(url.split("/")[:3])

    def _sign_in(self, login_url):
        import re

        page = self.browser.get(login_url, timeout=10)
        action = re.search(r'<form[^>]*action="([^"]+)"', page.text).group(1)
        return self.browser.post(self._origin(login_url) + action, timeout=10, allow_redirects=False,
                                 data={"j_username": self.username, "j_password": self.password})

    def authorize(self, authorization_url, approve=True):
        """Follow the authorization URL through login and approval; return the redirect back (URL)."""
        import re

        response = self.browser.get(authorization_url, allow_redirects=False, timeout=10)
        origin = self._origin(authorization_url)
        if response.status_code == 302 and response.headers["Location"].startswith(origin):
            back = self._sign_in(response.headers["Location"])
            assert back.status_code == 302, back.text[:300]
            response = self.browser.get(back.headers["Location"], allow_redirects=False, timeout=10)
        if response.status_code == 200 and "OAuth2 Confirm Access" in response.text:
            action = authorization_url.split("?")[0]
            response = self.browser.post(action, data={"user_oauth_approval": "true" if approve else "false"},
                                         allow_redirects=False, timeout=10)
        elif response.status_code == 200 and "Consent required" in response.text:
            state = re.search(r'name="state" value="([^"]+)"', response.text).group(1)
            client_id = re.search(r'name="client_id" value="([^"]+)"', response.text)
            boxes = re.findall(r'type="checkbox" name="scope" value="([^"]+)"', response.text)
            response = self.browser.post(authorization_url.split("?")[0], allow_redirects=False, timeout=10,
                                         data={"client_id": client_id.group(1) if client_id else "geologin",
                                               "state": state, "scope": boxes if approve else []})
        assert response.status_code in (302, 303), (response.status_code, response.text[:300])
        return response.headers["Location"]
