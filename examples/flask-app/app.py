"""A small Flask application whose users sign in through geologin (OpenID Connect, Authlib's client): the
"Flask app with Authlib" recipe of docs/applications.md, run by `make demo` and tests/test_demo_app.py.

Configure it with environment variables, then serve it like any Flask app:

    APP_ISSUER=https://login.example.org  APP_URL=https://app.example.org \
    APP_CLIENT_ID=...  APP_CLIENT_SECRET=...  APP_SECRET_KEY=...  flask --app app run

Optional: APP_TITLE (the page's title), APP_SCOPE (default "openid profile email"; add "groups" for the
person's geologin groups, "dhis2" to call DHIS2 through geologin), APP_COOKIE (the session cookie's name,
when two of them share a host), APP_DHIS2_ORG_UNITS (a URL of geologin's DHIS2 proxy, e.g.
https://login.example.org/dhis2/moh/api/me?fields=organisationUnits[name]: the home page then lists the
person's DHIS2 org units, fetched with their own DHIS2 token; docs/dhis2-tokens.md).

Register it in geologin with redirect URI APP_URL/callback and post-logout URI APP_URL/ ."""
import os
import secrets
from html import escape
from urllib.parse import urlencode

import requests
from authlib.integrations.flask_client import OAuth, OAuthError
from flask import Flask, redirect, session


def create_app(issuer=None, app_url=None, client_id=None, client_secret=None, secret_key=None):
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=secret_key or os.environ.get("APP_SECRET_KEY") or secrets.token_hex(32),
        # geologin's own cookie lives on the same host in the demo: a distinct name keeps them apart.
        SESSION_COOKIE_NAME=os.environ.get("APP_COOKIE", "example_app_session"),
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_HTTPONLY=True,
    )
    issuer = (issuer or os.environ["APP_ISSUER"]).rstrip("/")
    app_url = (app_url or os.environ["APP_URL"]).rstrip("/")
    app.config["SESSION_COOKIE_SECURE"] = app_url.startswith("https://")

    oauth = OAuth(app)
    geologin = oauth.register(
        "geologin",
        client_id=client_id or os.environ["APP_CLIENT_ID"],
        client_secret=client_secret or os.environ.get("APP_CLIENT_SECRET"),
        server_metadata_url=f"{issuer}/.well-known/openid-configuration",
        client_kwargs={"scope": os.environ.get("APP_SCOPE", "openid profile email"),
                       "code_challenge_method": "S256"},
    )
    title = os.environ.get("APP_TITLE", "Example app")
    callback_url, home_url = f"{app_url}/callback", f"{app_url}/"

    @app.get("/")
    def home():
        user = session.get("user")
        if not user:
            return _page(title, '<p>You are not signed in.</p>'
                                '<p><a href="/login">Sign in with geologin</a></p>')
        rows = "".join(f"<tr><th>{escape(str(k))}</th><td>{escape(str(v))}</td></tr>" for k, v in sorted(user.items()))
        return _page(title, f'<p>Signed in as <strong id="user">{escape(str(user.get("preferred_username")))}'
                            f'</strong></p>{_org_units()}<table>{rows}</table>'
                            '<form method="post" action="/logout"><button>Log out</button></form>')

    def _org_units():
        """The person's DHIS2 org units, asked through geologin's proxy with the access token geologin gave this
        app (scope dhis2): geologin calls DHIS2 with the person's own kept token."""
        url = os.environ.get("APP_DHIS2_ORG_UNITS")
        if not url or not session.get("access_token"):
            return ""
        try:
            answer = requests.get(url, headers={"Authorization": f"Bearer {session['access_token']}"}, timeout=10)
            body = answer.json()
        except (requests.RequestException, ValueError) as error:
            return f'<p id="dhis2-org-units">DHIS2 could not be asked: {escape(type(error).__name__)}</p>'
        if answer.status_code != 200:
            return (f'<p id="dhis2-org-units">DHIS2 through geologin said {answer.status_code}: '
                    f'{escape(str(body.get("error")))} {escape(str(body.get("reason") or ""))}</p>')
        names = ", ".join(str(unit.get("name")) for unit in body.get("organisationUnits", []))
        return f'<p id="dhis2-org-units">Your DHIS2 org units (asked with your own DHIS2 token): {escape(names)}</p>'

    @app.get("/login")
    def login():
        try:
            return geologin.authorize_redirect(callback_url)  # reads geologin's discovery document first
        except requests.RequestException:
            return _page("geologin is not reachable", f"<p>No OpenID provider answers at {escape(issuer)}.</p>"), 503

    @app.get("/callback")
    def callback():
        try:
            token = geologin.authorize_access_token()  # checks state, PKCE, the id_token's signature and nonce
            claims = dict(token["userinfo"])  # the id_token's claims
            claims.update(geologin.userinfo(token=token))  # profile and email, from the userinfo endpoint
        except OAuthError as error:  # e.g. access_denied: the person was refused or clicked Deny
            return _page("Not signed in", f"<p>geologin said: {escape(error.error or '')} "
                                          f"{escape(error.description or '')}</p><p><a href='/'>Back</a></p>"), 403
        session.clear()
        session["user"] = claims
        session["id_token"] = token["id_token"]
        session["access_token"] = token["access_token"]
        return redirect(home_url)

    @app.post("/logout")
    def logout():
        """Forget the user here, then end the geologin session too (RP-initiated logout)."""
        id_token = session.pop("id_token", None)
        session.clear()
        end_session = geologin.load_server_metadata().get("end_session_endpoint")
        if not end_session or not id_token:
            return redirect(home_url)
        return redirect(end_session + "?" + urlencode({"id_token_hint": id_token,
                                                       "post_logout_redirect_uri": home_url}))

    return app


def _page(title, body):
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title></head>"
            f"<body><h1>{escape(title)}</h1>{body}</body></html>")


if __name__ == "__main__":  # python app.py: served on 127.0.0.1, APP_PORT or 5100
    create_app().run(host="127.0.0.1", port=int(os.environ.get("APP_PORT", "5100")))
