"""Baseline for benchmark item 2: a minimal Authlib Flask client doing what geologin's external login does
against a legacy (2.30-2.41, ``/uaa``) DHIS2: a redirect with state and PKCE S256 (kept in Flask's signed
cookie session), then on the callback the code exchange (client_secret_basic) and the ``/api/me`` fetch,
and a session naming the user. No database, no audit, no user matching, no rate limit: the floor for doing
the same OAuth work with the usual library.

Settings (environment): ``BASELINE_DHIS2_URL`` (the fake DHIS2's base URL, with a trailing slash),
``BASELINE_CLIENT_ID``, ``BASELINE_CLIENT_SECRET``, ``BASELINE_PUBLIC_URL`` (this app's address; the
redirect URI is ``BASELINE_PUBLIC_URL/callback``) and ``BASELINE_SECRET_KEY``.

Served as ``benchmarks.timed_wsgi:app`` with ``BENCH_APP=baseline_authlib:app`` (see run.py).
"""
import os

from authlib.integrations.flask_client import OAuth
from flask import Flask, abort, redirect, session
from markupsafe import escape

BASE = os.environ.get("BASELINE_DHIS2_URL", "http://127.0.0.1:8080/")
PUBLIC_URL = os.environ.get("BASELINE_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")

app = Flask(__name__)
app.secret_key = os.environ.get("BASELINE_SECRET_KEY", "baseline-only-not-secret-" + "x" * 40)

oauth = OAuth(app)
oauth.register(
    "dhis2",
    client_id=os.environ.get("BASELINE_CLIENT_ID", "baseline"),
    client_secret=os.environ.get("BASELINE_CLIENT_SECRET", ""),
    authorize_url=BASE + "uaa/oauth/authorize",
    access_token_url=BASE + "uaa/oauth/token",
    api_base_url=BASE,
    client_kwargs={"code_challenge_method": "S256", "token_endpoint_auth_method": "client_secret_basic",
                   "default_timeout": (5, 10)},
)


@app.route("/login")
def login():
    return oauth.dhis2.authorize_redirect(PUBLIC_URL + "/callback")


@app.route("/callback")
def callback():
    token = oauth.dhis2.authorize_access_token()
    response = oauth.dhis2.get("api/me", token=token, headers={"Accept": "application/json"})
    if response.status_code != 200:
        abort(502)
    me = response.json()
    username = me.get("username") or (me.get("userCredentials") or {}).get("username")
    if not username:
        abort(502)
    session.clear()
    session["user"] = username
    return redirect("/")


@app.route("/")
def index():
    if "user" not in session:
        return redirect("/login")
    return f"<!doctype html><title>Home</title><p>Logged in as {escape(session['user'])}</p>"
