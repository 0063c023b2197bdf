#!/usr/bin/env python3
"""Fake DHIS2 server: an OAuth 2 authorization server plus a sliver of the DHIS2 Web API.

NOT FOR PRODUCTION.  It exists for geologin's tests (run as a real HTTP process on loopback) and
for demos.  State lives in memory (guarded by one lock), there is no CSRF protection, and
test-only endpoints under ``/__fake__/`` let a test add users/clients and switch failure modes.

It behaves as ``shared/reference/dhis2-oauth.md`` (the project's reference page on DHIS2 OAuth)
says, for both DHIS2 OAuth generations, chosen by ``--version``:

* ``< 2.42`` (2.30 - 2.40, and 2.41.1+): legacy Spring Security OAuth ("uaa"):
  ``/uaa/oauth/authorize``, ``/uaa/oauth/token``, profile from ``/api/me``;
* ``2.41.0`` (and ``2.41``, which means 2.41.0): no OAuth at all, every OAuth URL answers 404;
* ``>= 2.42``: Spring Authorization Server: ``/.well-known/openid-configuration``,
  ``/oauth2/authorize``, ``/oauth2/token``, ``/oauth2/jwks``, ``/userinfo``; ``/uaa/...`` is 404.

Usage::

    python plugins/dhis2/fake_dhis2.py --port 0 --version 2.40 [--base-path /dhis]
        [--public-url URL] [--config FILE.json] [--quiet]
        [--user USERNAME:PASSWORD[:UID[:EMAIL]]]...
        [--client CLIENT_ID:SECRET:REDIRECT_URI[,REDIRECT_URI2...]]...

On start it prints ``fake-dhis2 listening on http://HOST:PORT/BASE`` on stdout.  The socket is bound
with werkzeug's ``make_server`` (what ``run_simple`` uses underneath) so that ``--port 0`` works and
the real port can be printed.

Default data (when no user / no client is given): users ``admin:district`` (uid M5zQapPyTZI),
``alice:Alice-pass-123`` (uid xE7jOejl9FI, alice@example.org), ``bob:Bob-pass-123``
(uid pAhIq1x2f9a, no email); client ``geologin`` with the 36-character secret
``0123456789abcdef0123456789abcdef0123`` and redirect URI
``http://127.0.0.1:5000/auth/dhis2/callback``.

Client secrets on 2.42+: real DHIS2 stores them bcrypt-hashed.  Here a client's ``secret`` is
given in plain text and compared in plain text, unless it is itself a bcrypt hash (``$2a$``,
``$2b$``, ``$2y$``): then it is checked with the ``bcrypt`` package if that is importable (the
request fails with ``invalid_client`` if it is not).  A client with ``"secret_unhashed": true``
simulates an admin who stored the secret unhashed: on 2.42+ its authentication always fails,
as DHIS2's BCrypt encoder refuses non-bcrypt values.

Test-control endpoints (fake-only; served at ``/__fake__/`` and also under the base path):

* ``POST /__fake__/users``      JSON user (or list): add/update/rename/re-create/delete;
* ``POST /__fake__/clients``    JSON client (or list): add/update/delete;
* ``POST /__fake__/behaviour``  JSON failure modes, see ``FAULT_TARGETS`` / ``FAULT_MODES`` /
  ``ID_TOKEN_FAULTS``; sticky until changed (``null`` clears) unless ``"once": true``;
  also ``stall_seconds`` and ``huge_bytes``;
* ``GET  /__fake__/log``        requests received (secret values redacted);
* ``GET  /__fake__/state``      users (no passwords), clients, behaviour, version;
* ``POST /__fake__/reset``      back to the start-up data (keeps the signing key);
* ``POST /__fake__/login``      JSON {username, password}: sets the DHIS2 session cookie;
* ``POST /__fake__/rotate-keys`` new signing key (what a DHIS2 restart without keystore does);
* ``POST /__fake__/expire-tokens`` expires every access token issued so far.

Failure modes (``POST /__fake__/behaviour``): targets ``token``, ``me`` (/api/me),
``userinfo``, ``discovery``, ``jwks`` take ``"500"`` (HTML 500), ``"html"`` (200 HTML page),
``"array"`` (200 ``[]``), ``"missing_access_token"`` (the key fields removed: access_token;
id/username/userCredentials; sub; issuer/endpoints; keys), ``"wrong_token_type"`` (token_type
"mac"; elsewhere the key fields become the number 12345), ``"stall"`` (sleep ``stall_seconds``,
default 30, then answer normally), ``"huge"`` (a streamed body of ``huge_bytes``, default 50 MB);
``"refuse-nothing"`` and ``null`` mean normal behaviour.  ``id_token`` takes ``bad_sig``,
``wrong_iss``, ``wrong_aud``, ``no_sub``, ``expired``, ``wrong_nonce``, ``alg_none``,
``hs256_pubkey`` (HMAC keyed with the public key PEM), ``unknown_kid`` (signed by a key not in
the JWKS), ``no_kid`` (validly signed, no ``kid`` header).  "500"/"html"/"array"/"huge" answer
before the request is processed, so e.g. an authorization code is not consumed.

Choices where the reference page is silent (from the Spring sources DHIS2 uses):

* legacy error descriptions are the reference's short texts ("Invalid authorization code",
  "Invalid access token"); real Spring appends ": <the value>";
* legacy: an unknown client shows the same redirect_uri_mismatch error page (Spring itself
  may say invalid_client there); both never redirect;
* 2.42+: OAuth parameters are validated before the login redirect (as Spring Authorization
  Server does); asking scope ``openid`` alone never needs consent (Spring's default rule), any
  other scope shows the consent page until approved; unticking everything (or "Cancel") is
  the deny path and forgets the consent; ``localhost`` redirect URIs are refused (only loopback
  IP literals get the any-port rule); a ``code_verifier`` without a ``code_challenge`` is
  refused; a replayed code revokes the tokens it produced;
* ``/api/system/ping`` answers the text "pong" without a login (every version, as DHIS2's
  SystemController); ``/api/loginConfig`` (2.41+) needs no login; ``/api/system/info`` does;
* the HTML login page (every version) posts j_username/j_password to
  ``/dhis-web-commons-security/login.action``; ``/api/auth/login`` (JSON) exists on 2.41+.
"""
from __future__ import annotations

import argparse
import base64
import binascii
import functools
import hashlib
import hmac
import html
import ipaddress
import json
import logging
import math
import re
import secrets
import string
import sys
import threading
import time
import uuid
from urllib.parse import parse_qsl, quote, unquote_plus, urlsplit, urlunsplit

from flask import Blueprint, Flask, Response, abort, current_app, g, request
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey
from werkzeug.serving import make_server

try:  # optional: only needed for clients whose secret is given as a bcrypt hash
    import bcrypt  # type: ignore
except ImportError:  # pragma: no cover - depends on the environment
    bcrypt = None

# --------------------------------------------------------------------------------------------
# Constants and default data
# --------------------------------------------------------------------------------------------

SESSION_COOKIE = "JSESSIONID"
DEFAULT_SECRET = "0123456789abcdef0123456789abcdef0123"
DEFAULT_REDIRECT_URI = "http://127.0.0.1:5000/auth/dhis2/callback"
DEFAULT_USERS = [
    {"username": "admin", "password": "district", "uid": "M5zQapPyTZI",
     "firstName": "John", "surname": "Traore", "authorities": ["ALL"]},
    {"username": "alice", "password": "Alice-pass-123", "uid": "xE7jOejl9FI",
     "email": "alice@example.org", "firstName": "Alice", "surname": "Example"},
    {"username": "bob", "password": "Bob-pass-123", "uid": "pAhIq1x2f9a",
     "firstName": "Bob", "surname": "Example"},
]
DEFAULT_CLIENT = {"client_id": "geologin", "secret": DEFAULT_SECRET,
                  "redirect_uris": [DEFAULT_REDIRECT_URI]}

LEGACY_TOKEN_SECONDS = 43200          # DHIS2 default accessTokenValiditySeconds (12 h)
LEGACY_REFRESH_SECONDS = 30 * 86400
NEW_ACCESS_SECONDS = 300              # Spring Authorization Server default: 5 minutes
NEW_ID_TOKEN_SECONDS = 1800           # 30 minutes
NEW_REFRESH_SECONDS = 3600            # 60 minutes
NEW_CODE_SECONDS = 300                # 5 minutes

FAULT_TARGETS = ("token", "me", "userinfo", "discovery", "jwks")
FAULT_MODES = ("500", "html", "array", "missing_access_token", "wrong_token_type",
               "stall", "huge", "refuse-nothing")
ID_TOKEN_FAULTS = ("bad_sig", "wrong_iss", "wrong_aud", "no_sub", "expired", "wrong_nonce",
                   "alg_none", "hs256_pubkey", "unknown_kid", "no_kid",
                   # a server clock 30 s fast, and a token that expired 30 s ago: within a client's leeway
                   "clock_ahead", "just_expired")
# keys that "missing_access_token" removes / "wrong_token_type" turns into numbers
IDENTITY_KEYS = {
    "token": ("access_token",),
    "me": ("id", "username", "userCredentials"),
    "userinfo": ("sub",),
    "discovery": ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri"),
    "jwks": ("keys",),
}
REDACTED_PARAMS = {"access_token", "client_secret", "password", "j_password", "code_verifier",
                   "refresh_token"}
SPRING_AS_ERROR_URI = "https://datatracker.ietf.org/doc/html/rfc6749#section-4.1.2.1"
LEGACY_CODE_ALPHABET = string.ascii_letters + string.digits + "-_"
UID_ALPHABET = string.ascii_letters + string.digits

# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def parse_version(text) -> tuple:
    """'2.40' -> (2, 40, 0); '2.42.5' -> (2, 42, 5)."""
    m = re.match(r"^\s*(\d+)\.(\d+)(?:\.(\d+))?", str(text))
    if not m:
        raise ValueError(f"not a DHIS2 version: {text!r}")
    return tuple(int(part or 0) for part in m.groups())


def generation_of(version: tuple) -> str:
    """'legacy', 'new' or 'none' (2.41.0 shipped without OAuth)."""
    if version >= (2, 42, 0):
        return "new"
    if version == (2, 41, 0):
        return "none"
    return "legacy"


def make_uid() -> str:
    """A DHIS2-style 11-character UID (a letter, then letters and digits)."""
    return secrets.choice(string.ascii_letters) + "".join(
        secrets.choice(UID_ALPHABET) for _ in range(10))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def split_list(value) -> list:
    """A list, or a comma / newline separated string (DHIS2 stores lists that way)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [item.strip() for item in re.split(r"[,\n]", value) if item.strip()]
    return [str(item) for item in value]


def consteq(a: str, b: str) -> bool:
    return hmac.compare_digest(str(a).encode("utf-8"), str(b).encode("utf-8"))


def qp(value: str) -> str:
    """Encode a query parameter value roughly as Spring's UriComponents does (space -> %20)."""
    return quote(str(value), safe="-._~!$'()*,;:@/?")


def add_query(uri: str, params: list) -> str:
    """Append (name, value) pairs to uri's query; None values are skipped."""
    extra = "&".join(f"{qp(k)}={qp(v)}" for k, v in params if v is not None)
    parts = urlsplit(uri)
    query = f"{parts.query}&{extra}" if parts.query and extra else (parts.query or extra)
    return urlunsplit(parts._replace(query=query))


def seconds_left(expires: float) -> int:
    """Whole seconds left, always below the full validity (43199 / 299 right after issue)."""
    return max(0, math.ceil(expires - time.time()) - 1)


def json_response(obj, status: int = 200, headers: dict | None = None) -> Response:
    resp = Response(json.dumps(obj), status=status, content_type="application/json;charset=UTF-8")
    for name, value in (headers or {}).items():
        resp.headers[name] = value
    return resp


def html_page(title: str, body: str, status: int = 200) -> Response:
    page = (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title></head>\n<body>\n{body}\n</body></html>\n")
    return Response(page, status=status, content_type="text/html;charset=UTF-8")


def esc(value) -> str:
    return html.escape(str(value), quote=True)


def is_loopback_ip(host: str | None) -> bool:
    if not host:
        return False
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def with_port(uri: str, port) -> str:
    parts = urlsplit(uri)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{port}" if port else "")
    if parts.username:
        netloc = parts.username + (f":{parts.password}" if parts.password else "") + "@" + netloc
    return urlunsplit(parts._replace(netloc=netloc))


def basic_credentials(url_decode: bool = False):
    """(user, password) from an HTTP Basic header, or None if absent/undecodable."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    if ":" not in decoded:
        return None
    user, _, password = decoded.partition(":")
    if url_decode:  # RFC 6749 2.3.1; Spring Authorization Server decodes, legacy does not
        user, password = unquote_plus(user), unquote_plus(password)
    return user, password


def bearer_value():
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


# --------------------------------------------------------------------------------------------
# Users and clients
# --------------------------------------------------------------------------------------------


def normalise_user(data: dict, existing: dict | None = None) -> dict:
    user = dict(existing or {})
    for key in ("username", "password", "uid", "firstName", "surname", "disabled", "authorities"):
        if key in data and data[key] is not None:
            user[key] = data[key]
    if "email" in data:
        if data["email"]:
            user["email"] = data["email"]
        else:
            user.pop("email", None)
    if not user.get("username"):
        raise ValueError("a user needs a username")
    if not user.get("password"):
        raise ValueError(f"user {user['username']!r} needs a password")
    user.setdefault("uid", make_uid())
    user.setdefault("credentials_uid", make_uid())
    user.setdefault("firstName", user["username"].capitalize())
    user.setdefault("surname", "User")
    user.setdefault("disabled", False)
    user.setdefault("authorities", [])
    return user


def normalise_client(data: dict, existing: dict | None = None) -> dict:
    client = dict(existing or {})
    cid = data.get("client_id") or data.get("clientId") or data.get("cid")
    if cid:
        client["client_id"] = cid
    if not client.get("client_id"):
        raise ValueError("a client needs a client_id")
    secret = data.get("secret", data.get("clientSecret", data.get("client_secret")))
    if secret is not None:
        client["secret"] = secret
    if "redirect_uris" in data or "redirectUris" in data:
        client["redirect_uris"] = split_list(data.get("redirect_uris", data.get("redirectUris")))
    if "grant_types" in data or "grantTypes" in data:
        client["grant_types"] = split_list(data.get("grant_types", data.get("grantTypes")))
    if "scopes" in data:
        client["scopes"] = split_list(data["scopes"]) if not isinstance(data["scopes"], str) \
            else [s for s in re.split(r"[\s,]+", data["scopes"]) if s]
    if "auth_methods" in data:
        client["auth_methods"] = split_list(data["auth_methods"])
    for key in ("require_consent", "require_pkce", "secret_unhashed"):
        if key in data:
            client[key] = bool(data[key])
    if not client.get("secret"):
        raise ValueError(f"client {client['client_id']!r} needs a secret")
    client.setdefault("redirect_uris", [])
    client.setdefault("grant_types", ["authorization_code", "refresh_token", "password"])
    client.setdefault("scopes", ["openid", "profile", "email", "username"])
    client.setdefault("auth_methods", ["client_secret_basic", "client_secret_post"])
    client.setdefault("require_consent", True)
    client.setdefault("require_pkce", False)
    client.setdefault("secret_unhashed", False)
    return client


def public_user(user: dict) -> dict:
    return {k: v for k, v in user.items() if k != "password"}


# --------------------------------------------------------------------------------------------
# The in-memory state
# --------------------------------------------------------------------------------------------


class FakeState:
    """Everything the fake remembers; every access goes through ``lock``."""

    def __init__(self, config: dict):
        self.lock = threading.RLock()
        self.version = parse_version(config.get("version", "2.40"))
        text = str(config.get("version", "2.40")).strip()
        self.version_text = text if text.count(".") >= 2 else f"{text}.0"
        self.generation = generation_of(self.version)
        base = (config.get("base_path") or "").strip()
        self.base = ("/" + base.strip("/")) if base.strip("/") else ""
        self.public_url = config.get("public_url")  # main() fills it in once the port is known
        self.stall_seconds_default = float(config.get("stall_seconds", 30))
        self.huge_bytes_default = int(config.get("huge_bytes", 50 * 1024 * 1024))
        self.legacy_token_seconds = int(config.get("legacy_token_seconds", LEGACY_TOKEN_SECONDS))
        users = config.get("users") or DEFAULT_USERS
        clients = config.get("clients") or [DEFAULT_CLIENT]
        self.initial_users = [normalise_user(u) for u in users]
        self.initial_clients = [normalise_client(c) for c in clients]
        self.rotate_keys()
        self.reset()

    # -- lifecycle --------------------------------------------------------------------------

    def reset(self):
        with self.lock:
            self.users = {u["uid"]: dict(u) for u in self.initial_users}
            self.clients = {c["client_id"]: dict(c) for c in self.initial_clients}
            self.sessions = {}        # session id -> {uid, saved, auth_time, oidc_sid, legacy_request}
            self.codes = {}           # authorization code -> grant details
            self.legacy_tokens = {}   # access token -> {...}
            self.legacy_by_grant = {}  # (uid, client_id, scope) -> access token
            self.refresh_tokens = {}  # refresh token -> {...}
            self.jwt_tokens = {}      # jti -> {...} (2.42+ access tokens)
            self.pending_consents = {}  # internal state -> authorization request
            self.consents = {}        # (uid, client_id) -> set of scopes
            self.behaviour = {}
            self.behaviour_once = set()
            self.stall_seconds = self.stall_seconds_default
            self.huge_bytes = self.huge_bytes_default
            self.request_log = []

    def rotate_keys(self):
        with self.lock:
            self.kid = str(uuid.uuid4())
            self.key = RSAKey.generate_key(2048, parameters={"kid": self.kid})
            self.other_key = None  # lazily generated, for the "unknown_kid" fault

    # -- derived values ---------------------------------------------------------------------

    @property
    def root(self) -> str:
        """Public URL without trailing slash (http://host:port/base)."""
        return (self.public_url or "").rstrip("/")

    @property
    def issuer(self) -> str:
        return self.root + "/"

    def login_path(self) -> str:
        if self.version >= (2, 43, 0):
            return "/login/"
        if self.version >= (2, 42, 0):
            return "/dhis-web-login/"
        if self.version >= (2, 41, 0):
            return "/dhis-web-login"
        return "/dhis-web-commons/security/login.action"

    # -- lookups ----------------------------------------------------------------------------

    def user_by_name(self, username: str):
        for user in self.users.values():
            if user["username"] == username:
                return user
        return None

    def check_password(self, username: str, password: str):
        user = self.user_by_name(username or "")
        if user and not user.get("disabled") and consteq(user["password"], password or ""):
            return user
        return None

    # -- users / clients management (test control) ------------------------------------------

    def upsert_user(self, data: dict) -> dict:
        uid, username = data.get("uid"), data.get("username")
        if data.get("delete"):
            victim = self.users.get(uid) if uid else self.user_by_name(username or "")
            if victim:
                del self.users[victim["uid"]]
            return {"deleted": bool(victim)}
        if uid and uid in self.users:
            user = normalise_user(data, self.users[uid])          # update / rename
        elif uid:
            user = normalise_user(data)                           # (re-)create with this uid
        else:
            existing = self.user_by_name(username or "")
            user = normalise_user(data, existing)
        for other in list(self.users.values()):                   # usernames are unique
            if other["uid"] != user["uid"] and other["username"] == user["username"]:
                del self.users[other["uid"]]
        self.users[user["uid"]] = user
        return public_user(user)

    def upsert_client(self, data: dict) -> dict:
        cid = data.get("client_id") or data.get("clientId") or data.get("cid")
        if data.get("delete"):
            return {"deleted": self.clients.pop(cid, None) is not None}
        client = normalise_client(data, self.clients.get(cid))
        self.clients[client["client_id"]] = client
        return client

    # -- behaviour (failure modes) ----------------------------------------------------------

    def set_behaviour(self, data: dict) -> dict:
        once = bool(data.get("once"))
        for target in FAULT_TARGETS + ("id_token",):
            if target not in data:
                continue
            mode = data[target]
            allowed = ID_TOKEN_FAULTS if target == "id_token" else FAULT_MODES
            if mode is not None and mode not in allowed:
                raise ValueError(f"unknown {target} behaviour {mode!r}; one of {allowed}")
            if mode is None or mode == "refuse-nothing":
                self.behaviour.pop(target, None)
                self.behaviour_once.discard(target)
            else:
                self.behaviour[target] = mode
                (self.behaviour_once.add if once else self.behaviour_once.discard)(target)
        if "stall_seconds" in data:
            self.stall_seconds = float(data["stall_seconds"])
        if "huge_bytes" in data:
            self.huge_bytes = int(data["huge_bytes"])
        return self.describe_behaviour()

    def describe_behaviour(self) -> dict:
        return {"behaviour": dict(self.behaviour), "once": sorted(self.behaviour_once),
                "stall_seconds": self.stall_seconds, "huge_bytes": self.huge_bytes}

    def take_fault(self, target: str):
        mode = self.behaviour.get(target)
        if mode and target in self.behaviour_once:
            self.behaviour.pop(target, None)
            self.behaviour_once.discard(target)
        return mode


def S() -> FakeState:
    return current_app.extensions["fake_dhis2"]


# --------------------------------------------------------------------------------------------
# Sessions (our own JSESSIONID, in memory)
# --------------------------------------------------------------------------------------------


def current_session(create: bool = False):
    state = S()
    sid = g.get("session_id") or request.cookies.get(SESSION_COOKIE)
    sess = state.sessions.get(sid) if sid else None
    if sess is None and create:
        sid = secrets.token_hex(16).upper()
        sess = {"id": sid, "uid": None}
        state.sessions[sid] = sess
        g.session_id = sid
    return sess


def session_user():
    sess = current_session()
    if not sess or not sess.get("uid"):
        return None
    user = S().users.get(sess["uid"])
    return user if user and not user.get("disabled") else None


def log_in(user: dict) -> dict:
    """Start an authenticated session (a fresh id, as Spring's session-fixation protection)."""
    state = S()
    old = current_session()
    if old:
        state.sessions.pop(old["id"], None)
    g.session_id = None
    sess = current_session(create=True)
    sess.update({"uid": user["uid"], "auth_time": int(time.time()),
                 "oidc_sid": b64url(secrets.token_bytes(24)),
                 "saved": (old or {}).get("saved")})
    return sess


def log_out():
    sess = current_session()
    if sess:
        S().sessions.pop(sess["id"], None)
    g.clear_session = True


def path_in_base() -> str:
    """The current request's path+query, relative to the base path."""
    path = request.full_path if request.query_string else request.path
    return path[len(S().base):] if path.startswith(S().base) else path


def redirect_to_login(save: bool = True) -> Response:
    state = S()
    if save:
        current_session(create=True)["saved"] = path_in_base()
    return Response("", status=302, headers={"Location": state.root + state.login_path()})


def unauthenticated_api() -> Response:
    """No credentials at all on /api/...: 302 to login, or 401 JSON for XHR."""
    if request.headers.get("X-Requested-With") == "XMLHttpRequest":
        return dhis_error(401, "Unauthorized")
    return redirect_to_login()


def dhis_error(status: int, message: str, dev_message: str | None = None,
               headers: dict | None = None) -> Response:
    body = {"httpStatus": {401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
                           500: "Internal Server Error"}.get(status, "Error"),
            "httpStatusCode": status, "status": "ERROR", "message": message}
    if dev_message:
        body["devMessage"] = dev_message
    return json_response(body, status, headers)


# --------------------------------------------------------------------------------------------
# Failure modes
# --------------------------------------------------------------------------------------------


def huge_response(size: int) -> Response:
    head, tail, chunk = b'{"padding":"', b'"}', b"a" * 65536

    def generate():
        yield head
        remaining = max(0, size - len(head) - len(tail))
        while remaining > 0:
            part = chunk if remaining >= len(chunk) else chunk[:remaining]
            remaining -= len(part)
            yield part
        yield tail
    return Response(generate(), status=200, content_type="application/json;charset=UTF-8")


def fault_response(mode: str, size: int):
    if mode == "500":
        return html_page("HTTP Status 500 - Internal Server Error",
                         "<h1>HTTP Status 500 - Internal Server Error</h1>", 500)
    if mode == "html":
        return html_page("DHIS 2", "<h1>DHIS 2</h1><p>Please log in.</p>"
                         "<form method=\"post\"><input name=\"j_username\"></form>")
    if mode == "array":
        return json_response([])
    if mode == "huge":
        return huge_response(size)
    return None


def mangle(target: str, mode: str, resp: Response) -> Response:
    """Apply a 'missing_access_token' / 'wrong_token_type' fault to a JSON success response."""
    if resp.status_code != 200 or not resp.is_json:
        return resp
    body = resp.get_json()
    if not isinstance(body, dict):
        return resp
    if target == "token" and mode == "wrong_token_type":
        body["token_type"] = "mac"
    else:
        for key in IDENTITY_KEYS[target]:
            if mode == "missing_access_token":
                body.pop(key, None)
            elif key in body:
                body[key] = 12345
    return json_response(body, resp.status_code, {k: v for k, v in resp.headers.items()
                                                   if k.lower() in ("cache-control", "pragma")})


def faulty(target: str, *generations: str):
    """Decorator: 404 unless the OAuth generation is one of ``generations`` (if given), then
    apply the configured failure mode of ``target``, then run the view locked."""
    def decorate(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            if generations:
                needs(*generations)
            state = S()
            with state.lock:
                mode = state.take_fault(target)
                stall, size = state.stall_seconds, state.huge_bytes
            early = fault_response(mode, size) if mode else None
            if early is not None:
                return early
            if mode == "stall":
                time.sleep(stall)
            with state.lock:
                resp = view(*args, **kwargs)
            if mode in ("missing_access_token", "wrong_token_type"):
                resp = mangle(target, mode, resp)
            return resp
        return wrapper
    return decorate


def locked(view):
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        with S().lock:
            return view(*args, **kwargs)
    return wrapper


def needs(*generations):
    """404 unless the server's OAuth generation is one of ``generations``."""
    if S().generation not in generations:
        abort(404)


# --------------------------------------------------------------------------------------------
# The DHIS2 blueprint (served under the base path)
# --------------------------------------------------------------------------------------------

dhis = Blueprint("dhis", __name__)


# -- pages, login and logout -------------------------------------------------------------------


@dhis.route("/", strict_slashes=False)
@locked
def root():
    return Response("", 302, {"Location": S().root + "/dhis-web-dashboard/"})


@dhis.route("/dhis-web-dashboard/", strict_slashes=False)
@locked
def dashboard():
    user = session_user()
    if user is None:
        return redirect_to_login()
    logout = S().base + "/dhis-web-commons-security/logout.action"
    return html_page("DHIS 2 (fake) dashboard",
                     f"<h1>Fake DHIS2 dashboard</h1><p>Logged in as "
                     f"<b id=\"username\">{esc(user['username'])}</b>.</p>"
                     f"<p><a href=\"{esc(logout)}\">Log out</a></p>")


def login_page() -> Response:
    state = S()
    error = ""
    if request.args.get("failed"):
        error = "<p class=\"error\" id=\"error\">Wrong username or password. Please try again.</p>"
    action = state.base + "/dhis-web-commons-security/login.action"
    body = (f"<h1>DHIS 2 (fake) {esc(state.version_text)}</h1>{error}\n"
            f"<form id=\"loginForm\" method=\"post\" action=\"{esc(action)}\">\n"
            "<label for=\"j_username\">Username</label>"
            "<input type=\"text\" id=\"j_username\" name=\"j_username\" autocomplete=\"username\">\n"
            "<label for=\"j_password\">Password</label>"
            "<input type=\"password\" id=\"j_password\" name=\"j_password\">\n"
            "<input type=\"submit\" id=\"submit\" value=\"Sign in\">\n</form>")
    return html_page("DHIS 2 (fake) - Log in", body)


@dhis.route("/dhis-web-commons/security/login.action")
@dhis.route("/dhis-web-login/", strict_slashes=False)
@dhis.route("/login/", strict_slashes=False)
@locked
def login_form():
    return login_page()


def after_login_location(sess: dict) -> str:
    saved = sess.pop("saved", None) or "/dhis-web-dashboard/"
    return saved


@dhis.route("/dhis-web-commons-security/login.action", methods=["POST"])
@locked
def login_submit():
    state = S()
    user = state.check_password(request.form.get("j_username", ""),
                                request.form.get("j_password", ""))
    if user is None:
        return Response("", 302, {"Location": state.root + state.login_path() + "?failed=true"})
    sess = log_in(user)
    return Response("", 302, {"Location": state.root + after_login_location(sess)})


@dhis.route("/api/auth/login", methods=["POST"])
@locked
def api_auth_login():
    """2.41+: what the login app calls with JSON {username, password, twoFactorCode}."""
    state = S()
    if state.version < (2, 41, 0):
        abort(404)
    data = request.get_json(silent=True) or {}
    user = state.check_password(data.get("username", ""), data.get("password", ""))
    if user is None:
        return dhis_error(401, "Bad credentials")
    sess = log_in(user)
    return json_response({"loginStatus": "SUCCESS",
                          "redirectUrl": state.base + after_login_location(sess)})


@dhis.route("/dhis-web-commons-security/logout.action", methods=["GET", "POST"])
@dhis.route("/api/auth/logout", methods=["GET", "POST"])
@locked
def logout():
    log_out()
    return Response("", 302, {"Location": S().root + S().login_path()})


# -- Web API -----------------------------------------------------------------------------------


def legacy_bearer_user(token: str):
    """(user, None) or (None, 401 response) for a legacy opaque access token."""
    state = S()
    record = state.legacy_tokens.get(token)
    if record is None or record["expires"] <= time.time():
        message = "Invalid access token" if record is None else "Access token expired"
        header = f'Bearer realm="oauth", error="invalid_token", error_description="{message}"'
        return None, json_response({"error": "invalid_token", "error_description": message},
                                   401, {"WWW-Authenticate": header})
    user = state.users.get(record["uid"])
    if user is None or user.get("disabled"):
        return None, json_response({"error": "invalid_token",
                                    "error_description": "Invalid access token"}, 401,
                                   {"WWW-Authenticate": 'Bearer realm="oauth", error="invalid_token"'
                                                        ', error_description="Invalid access token"'})
    return user, None


def jwt_api_error(dev_message: str) -> Response:
    header = f'Bearer error="invalid_token", error_description="{dev_message}"'
    return dhis_error(401, "invalid_token", dev_message, {"WWW-Authenticate": header})


def jwt_bearer_user(token: str):
    """2.42+: a JWT on /api works only on 2.42.5+ and only with the 'username' claim."""
    state = S()
    if state.version < (2, 42, 5):
        return None, jwt_api_error("JWT bearer authentication is not configured on this server "
                                   "(fake 2.42.0-2.42.4: oidc.jwt.token.authentication.enabled)")
    claims, problem = verify_access_jwt(token)
    if claims is None:
        return None, jwt_api_error(problem)
    username = claims.get("username")
    if not username:
        return None, jwt_api_error("Missing claim 'username' (ask scope 'username')")
    user = state.user_by_name(username)
    if user is None or user.get("disabled"):
        return None, jwt_api_error(f"Found no matching DHIS2 user for the mapping claim: "
                                   f"'username' with the value: '{username}'")
    return user, None


def api_user():
    """Authenticate an /api request: (user, None) or (None, error response)."""
    state = S()
    token = bearer_value()
    if token is None and state.generation == "legacy":
        token = request.args.get("access_token")  # GeoPrism Registry sent it this way
    if token is not None:
        if state.generation == "legacy":
            return legacy_bearer_user(token)
        if state.generation == "new":
            return jwt_bearer_user(token)
        return None, dhis_error(401, "Unauthorized")
    creds = basic_credentials()
    if request.headers.get("Authorization", "").lower().startswith("basic"):
        user = state.check_password(*creds) if creds else None
        if user is None:
            return None, dhis_error(401, "Unauthorized", headers={
                "WWW-Authenticate": 'Basic realm="DHIS2"'})
        return user, None
    user = session_user()
    if user is not None:
        return user, None
    return None, unauthenticated_api()


def me_json(user: dict, version: tuple) -> dict:
    admin = "ALL" in user.get("authorities", [])
    roles = ([{"id": "yrB6vc5Ip3r", "name": "Superuser"}] if admin
             else [{"id": "Euq3XfEIEbx", "name": "Data entry clerk"}])
    name = f"{user['firstName']} {user['surname']}"
    me = {"id": user["uid"]}
    if version >= (2, 38, 0):
        me["username"] = user["username"]
    me.update({"firstName": user["firstName"], "surname": user["surname"]})
    if user.get("email"):
        me["email"] = user["email"]
    me.update({"name": name, "displayName": name,
               "created": "2024-01-01T00:00:00.000", "lastUpdated": "2024-01-01T00:00:00.000",
               "organisationUnits": [{"id": "ImspTQPwCqd"}],
               "authorities": list(user.get("authorities", [])),
               "settings": {"keyUiLocale": "en", "keyDbLocale": "en"}})
    if version >= (2, 38, 0):
        me["userRoles"] = roles
    if version < (2, 42, 0):
        cred_id = user["credentials_uid"] if version < (2, 38, 0) else user["uid"]
        me["userCredentials"] = {"id": cred_id, "username": user["username"],
                                 "userRoles": roles, "disabled": False}
    return me


@dhis.route("/api/me")
@faulty("me")
def api_me():
    user, error = api_user()
    if error is not None:
        return error
    return json_response(me_json(user, S().version))


@dhis.route("/api/system/info")
@locked
def api_system_info():
    user, error = api_user()
    if error is not None:
        return error
    state = S()
    return json_response({"version": state.version_text, "revision": "fake000",
                          "buildTime": "2024-01-01T00:00:00.000",
                          "serverDate": time.strftime("%Y-%m-%dT%H:%M:%S.000", time.gmtime()),
                          "contextPath": state.root, "calendar": "iso8601",
                          "dateFormat": "yyyy-mm-dd", "systemName": "DHIS 2 (fake)"})


@dhis.route("/api/system/ping")
def api_system_ping():
    """Every version answers without a login, as DHIS2's SystemController does: the text "pong"."""
    return Response("pong", 200, {"Content-Type": "text/plain;charset=UTF-8", "Cache-Control": "no-store"})


@dhis.route("/api/loginConfig")
@locked
def api_login_config():
    state = S()
    if state.version < (2, 41, 0):
        abort(404)
    return json_response({"applicationTitle": "DHIS 2 (fake)", "apiVersion": state.version_text,
                          "uiLocale": "en", "emailConfigured": False,
                          "selfRegistrationEnabled": False, "oidcProviders": []})


# -- legacy OAuth (Spring Security OAuth 2) ----------------------------------------------------


def legacy_error_page(error: str, description: str, status: int = 400) -> Response:
    body = (f"<h1>OAuth Error</h1>\n<p>error=\"{esc(error)}\", "
            f"error_description=\"{esc(description)}\"</p>")
    return html_page("OAuth Error", body, status)


def legacy_redirect_matches(requested: str, registered: str) -> bool:
    """Spring's DefaultRedirectResolver: scheme, host, port, path equal; registered query kept."""
    r, g_ = urlsplit(requested), urlsplit(registered)
    try:
        same = (r.scheme, r.hostname, r.port, r.path) == (g_.scheme, g_.hostname, g_.port, g_.path)
    except ValueError:
        return False
    if not same:
        return False
    requested_query = parse_qsl(r.query, keep_blank_values=True)
    return all(pair in requested_query for pair in parse_qsl(g_.query, keep_blank_values=True))


def legacy_redirect(uri: str, params: list) -> Response:
    return Response("", 303, {"Location": add_query(uri, params)})


def legacy_code() -> str:
    return "".join(secrets.choice(LEGACY_CODE_ALPHABET) for _ in range(6))


def legacy_authorize_request(user: dict) -> Response:
    """GET (or POST without approval) /uaa/oauth/authorize: validate, then the approval page."""
    state, params = S(), request.values
    client = state.clients.get(params.get("client_id", ""))
    mismatch = ("redirect_uri_mismatch",
                "Invalid redirect uri does not match one of the registered values.")
    if client is None:
        return legacy_error_page(*mismatch)
    if "authorization_code" not in client["grant_types"]:
        return legacy_error_page("invalid_grant", "A redirect_uri can only be used by implicit "
                                 "or authorization_code grant types.")
    registered, requested = client["redirect_uris"], params.get("redirect_uri")
    if not registered:
        return legacy_error_page("invalid_request",
                                 "At least one redirect_uri must be registered with the client.")
    if requested:
        if not any(legacy_redirect_matches(requested, reg) for reg in registered):
            return legacy_error_page(*mismatch)
        redirect_uri = requested
    elif len(registered) == 1:
        redirect_uri = registered[0]
    else:
        return legacy_error_page("invalid_request", "A redirect_uri must be supplied.")
    client_state = params.get("state")
    response_type = params.get("response_type", "")
    if response_type != "code":
        return legacy_redirect(redirect_uri, [
            ("error", "unsupported_response_type"),
            ("error_description", f"Unsupported response types: [{response_type}]"),
            ("state", client_state)])
    scopes = [s for s in re.split(r"[\s,]+", params.get("scope", "")) if s]
    bad = [s for s in scopes if s != "ALL"]
    if bad:
        return legacy_redirect(redirect_uri, [
            ("error", "invalid_scope"), ("error_description", f"Invalid scope: {' '.join(bad)}"),
            ("scope", "ALL"), ("state", client_state)])
    current_session(create=True)["legacy_request"] = {
        "client_id": client["client_id"], "redirect_uri": redirect_uri,
        "redirect_uri_param": requested, "state": client_state, "scope": "ALL"}
    return legacy_approval_page(client["client_id"])


def legacy_approval_page(client_id: str) -> Response:
    action = esc(S().base + "/uaa/oauth/authorize")
    body = (f"<h1>OAuth2 Confirm Access</h1>\n"
            f"<p>Do you authorize '{esc(client_id)}' to access your protected resources?</p>\n"
            f"<form id=\"confirmationForm\" name=\"confirmationForm\" action=\"{action}\" "
            f"method=\"post\"><input name=\"user_oauth_approval\" value=\"true\" type=\"hidden\">"
            f"<button type=\"submit\" name=\"authorize\" value=\"Authorize\">Authorize</button>"
            f"</form>\n"
            f"<form id=\"denialForm\" name=\"denialForm\" action=\"{action}\" method=\"post\">"
            f"<input name=\"user_oauth_approval\" value=\"false\" type=\"hidden\">"
            f"<button type=\"submit\" name=\"deny\" value=\"Deny\">Deny</button></form>")
    return html_page("OAuth2 Confirm Access", body)


def legacy_approval(user: dict) -> Response:
    """POST /uaa/oauth/authorize with user_oauth_approval=true|false."""
    state = S()
    sess = current_session()
    pending = sess.pop("legacy_request", None) if sess else None
    if pending is None:
        return legacy_error_page("invalid_request",
                                 "Cannot approve uninitialized authorization request.")
    if request.form.get("user_oauth_approval", "").lower() != "true":
        return legacy_redirect(pending["redirect_uri"], [
            ("error", "access_denied"), ("error_description", "User denied access"),
            ("state", pending["state"])])
    code = legacy_code()
    while code in state.codes:
        code = legacy_code()
    state.codes[code] = dict(pending, uid=user["uid"])
    return legacy_redirect(pending["redirect_uri"], [("code", code), ("state", pending["state"])])


@dhis.route("/uaa/oauth/authorize", methods=["GET", "POST"])
@locked
def uaa_authorize():
    needs("legacy")
    user = session_user()
    if user is None:
        return redirect_to_login(save=request.method == "GET")
    if request.method == "POST" and "user_oauth_approval" in request.form:
        return legacy_approval(user)
    return legacy_authorize_request(user)


def legacy_token_error(status: int, error: str, description: str) -> Response:
    return json_response({"error": error, "error_description": description}, status,
                         {"Cache-Control": "no-store", "Pragma": "no-cache"})


def legacy_unauthorized(description: str) -> Response:
    header = (f'Basic realm="oauth2/client", error="unauthorized", '
              f'error_description="{description}"')
    return json_response({"error": "unauthorized", "error_description": description}, 401,
                         {"WWW-Authenticate": header})


def legacy_token_value() -> str:
    if S().version >= (2, 35, 0):
        return b64url(secrets.token_bytes(20))   # 27 characters
    return str(uuid.uuid4())


def legacy_issue(uid: str, client: dict, scope: str) -> Response:
    """Create (or re-use, like DefaultTokenServices) an access token; the JSON response."""
    state, now = S(), time.time()
    grant = (uid, client["client_id"], scope)
    token = state.legacy_by_grant.get(grant)
    record = state.legacy_tokens.get(token) if token else None
    if record is None or record["expires"] <= now:
        if record is not None:
            state.legacy_tokens.pop(token, None)
        refresh = record.get("refresh") if record else None
        if refresh and state.refresh_tokens.get(refresh, {}).get("expires", 0) <= now:
            refresh = None
        if refresh is None and "refresh_token" in client["grant_types"]:
            refresh = legacy_token_value()
            state.refresh_tokens[refresh] = {"uid": uid, "client_id": client["client_id"],
                                             "scope": scope,
                                             "expires": now + LEGACY_REFRESH_SECONDS}
        token = legacy_token_value()
        record = {"uid": uid, "client_id": client["client_id"], "scope": scope,
                  "expires": now + state.legacy_token_seconds, "refresh": refresh}
        state.legacy_tokens[token] = record
        state.legacy_by_grant[grant] = token
    body = {"access_token": token, "token_type": "bearer"}
    if record.get("refresh"):
        body["refresh_token"] = record["refresh"]
    body["expires_in"] = seconds_left(record["expires"])
    body["scope"] = scope
    return json_response(body, 200, {"Cache-Control": "no-store", "Pragma": "no-cache"})


def legacy_grant_code(client: dict) -> Response:
    state, params = S(), request.values
    code = params.get("code")
    if not code:
        return legacy_token_error(400, "invalid_request", "An authorization code must be supplied.")
    grant = state.codes.pop(code, None)              # single use, consumed before other checks
    if grant is None:
        return legacy_token_error(400, "invalid_grant", "Invalid authorization code")
    redirect_uri = params.get("redirect_uri")
    if (redirect_uri is not None or grant["redirect_uri_param"] is not None) \
            and redirect_uri != grant["redirect_uri"]:
        return legacy_token_error(400, "invalid_grant", "Redirect URI mismatch.")
    if grant["client_id"] != client["client_id"]:
        return legacy_token_error(401, "invalid_client", "Client ID mismatch")
    if grant["uid"] not in state.users:
        return legacy_token_error(400, "invalid_grant", "Invalid authorization code")
    return legacy_issue(grant["uid"], client, grant["scope"])


def legacy_grant_refresh(client: dict) -> Response:
    state, value = S(), request.values.get("refresh_token", "")
    record = state.refresh_tokens.get(value)
    if record is None or record["expires"] <= time.time():
        return legacy_token_error(400, "invalid_grant", f"Invalid refresh token: {value}")
    if record["client_id"] != client["client_id"]:
        return legacy_token_error(400, "invalid_grant", f"Wrong client for this refresh token: {value}")
    grant = (record["uid"], client["client_id"], record["scope"])
    old = state.legacy_by_grant.pop(grant, None)
    state.legacy_tokens.pop(old, None)
    resp = legacy_issue(record["uid"], client, record["scope"])
    return resp


def legacy_grant_password(client: dict) -> Response:
    state = S()
    user = state.check_password(request.values.get("username", ""),
                                request.values.get("password", ""))
    if user is None:
        return legacy_token_error(400, "invalid_grant", "Bad credentials")
    return legacy_issue(user["uid"], client, "ALL")


@dhis.route("/uaa/oauth/token", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
@faulty("token", "legacy")
def uaa_token():
    state = S()
    if request.method != "POST":
        return json_response({"error": "method_not_allowed",
                              "error_description": f"Request method '{request.method}' not supported"},
                             405, {"Allow": "POST"})
    creds = basic_credentials()
    if creds is None:
        return legacy_unauthorized("Full authentication is required to access this resource")
    client = state.clients.get(creds[0])
    if client is None or not consteq(client["secret"], creds[1]):
        return legacy_unauthorized("Bad credentials")
    form_client = request.values.get("client_id")
    if form_client is not None and form_client != client["client_id"]:
        return legacy_token_error(401, "invalid_client",
                                  "Given client ID does not match authenticated client")
    grant_type = request.values.get("grant_type")
    if not grant_type:
        return legacy_token_error(400, "invalid_request", "Missing grant type")
    handlers = {"authorization_code": legacy_grant_code, "refresh_token": legacy_grant_refresh,
                "password": legacy_grant_password}
    if grant_type == "implicit":
        return legacy_token_error(400, "invalid_grant",
                                  "Implicit grant type not supported from token endpoint")
    if grant_type not in handlers and grant_type != "client_credentials":
        return legacy_token_error(400, "unsupported_grant_type",
                                  f"Unsupported grant type: {grant_type}")
    if grant_type not in client["grant_types"]:
        return legacy_token_error(401, "invalid_client", f"Unauthorized grant type: {grant_type}")
    if grant_type not in handlers:
        return legacy_token_error(400, "unsupported_grant_type",
                                  f"Unsupported grant type: {grant_type}")
    return handlers[grant_type](client)


# -- new OAuth (Spring Authorization Server, 2.42+) ---------------------------------------------


def new_error_page(parameter: str, error: str = "invalid_request") -> Response:
    """Errors before the redirect URI is trusted: no redirect, a plain 400 page."""
    text = f"[{error}] OAuth 2.0 Parameter: {parameter}"
    return html_page("Error", f"<h1>HTTP Status 400 - Bad Request</h1>\n<p id=\"error\">"
                     f"{esc(text)}</p>", 400)


def new_error_redirect(redirect_uri: str, error: str, parameter: str, client_state) -> Response:
    return Response("", 302, {"Location": add_query(redirect_uri, [
        ("error", error), ("error_description", f"OAuth 2.0 Parameter: {parameter}"),
        ("error_uri", SPRING_AS_ERROR_URI), ("state", client_state)])})


def new_redirect_matches(requested: str, registered: list) -> bool:
    """Exact string match; loopback IP literals may use any port."""
    parts = urlsplit(requested)
    if not is_loopback_ip(parts.hostname):
        return requested in registered
    try:
        port = parts.port
    except ValueError:
        return False
    return any(is_loopback_ip(urlsplit(reg).hostname)
               and with_port(reg, port) == with_port(requested, port) for reg in registered)


def new_resolve_redirect(client: dict, requested, scopes: list):
    """(redirect_uri, None) or (None, error page)."""
    registered = client["redirect_uris"]
    if requested:
        parts = urlsplit(requested)
        if parts.fragment or not parts.hostname or parts.hostname == "localhost":
            return None, new_error_page("redirect_uri")
        if not new_redirect_matches(requested, registered):
            return None, new_error_page("redirect_uri")
        return requested, None
    if "openid" in scopes or len(registered) != 1:
        return None, new_error_page("redirect_uri")
    return registered[0], None


def new_authorize_request() -> Response:
    """GET /oauth2/authorize: validate everything, then login, consent, or a code."""
    state, params = S(), request.values
    client = state.clients.get(params.get("client_id", ""))
    if client is None:
        return new_error_page("client_id")
    scopes = [s for s in params.get("scope", "").split(" ") if s]
    requested = params.get("redirect_uri")
    redirect_uri, error = new_resolve_redirect(client, requested, scopes)
    if error is not None:
        return error
    client_state = params.get("state")

    def fail(err, parameter):
        return new_error_redirect(redirect_uri, err, parameter, client_state)

    response_type = params.get("response_type")
    if not response_type:
        return fail("invalid_request", "response_type")
    if response_type != "code":
        return fail("unsupported_response_type", "response_type")
    if "authorization_code" not in client["grant_types"]:
        return fail("unauthorized_client", "client_id")
    if any(s not in client["scopes"] for s in scopes):
        return fail("invalid_scope", "scope")
    challenge, method = params.get("code_challenge"), params.get("code_challenge_method")
    if challenge:
        if method != "S256":
            return fail("invalid_request", "code_challenge_method")
    elif client["require_pkce"]:
        return fail("invalid_request", "code_challenge")
    user = session_user()
    if user is None:
        return redirect_to_login()
    sess = current_session()
    authz = {"client_id": client["client_id"], "uid": user["uid"], "redirect_uri": redirect_uri,
             "redirect_uri_param": requested, "state": client_state, "scopes": scopes,
             "nonce": params.get("nonce"), "code_challenge": challenge,
             "sid": sess.get("oidc_sid"), "auth_time": sess.get("auth_time")}
    if consent_required(client, user, scopes):
        internal = b64url(secrets.token_bytes(32))
        state.pending_consents[internal] = authz
        return consent_page(client, user, scopes, internal)
    return issue_new_code(authz, scopes)


def consent_required(client: dict, user: dict, scopes: list) -> bool:
    """Spring Authorization Server's default rule."""
    if not client["require_consent"]:
        return False
    if scopes == ["openid"]:          # 'openid' alone does not require consent
        return False
    granted = S().consents.get((user["uid"], client["client_id"]), set())
    return not (granted and set(scopes) <= granted)


def consent_page(client: dict, user: dict, scopes: list, internal_state: str) -> Response:
    granted = S().consents.get((user["uid"], client["client_id"]), set())
    action = esc(S().base + "/oauth2/authorize")
    hidden = (f"<input type=\"hidden\" name=\"client_id\" value=\"{esc(client['client_id'])}\">"
              f"<input type=\"hidden\" name=\"state\" value=\"{esc(internal_state)}\">")
    boxes = "".join(
        f"<div><input type=\"checkbox\" name=\"scope\" value=\"{esc(s)}\" id=\"{esc(s)}\">"
        f"<label for=\"{esc(s)}\">{esc(s)}</label></div>\n"
        for s in scopes if s != "openid" and s not in granted)
    already = "".join(f"<div><input type=\"checkbox\" id=\"{esc(s)}\" disabled checked>"
                      f"<label for=\"{esc(s)}\">{esc(s)}</label></div>\n"
                      for s in scopes if s != "openid" and s in granted)
    if already:
        already = ("<p>You have already granted the following permissions to the above app:</p>\n"
                   + already)
    body = (f"<h1>Consent required</h1>\n<p><b>{esc(client['client_id'])}</b> wants to access "
            f"your account <b>{esc(user['username'])}</b></p>\n"
            "<p>The following permissions are requested by the above app. Please review these "
            "and consent if you approve.</p>\n"
            f"<form name=\"consent_form\" id=\"consent_form\" method=\"post\" action=\"{action}\">"
            f"\n{hidden}\n{boxes}{already}"
            "<button type=\"submit\" id=\"submit-consent\">Submit Consent</button>\n</form>\n"
            f"<form name=\"cancel_form\" id=\"cancel_form\" method=\"post\" action=\"{action}\">"
            f"{hidden}<button type=\"submit\" id=\"cancel-consent\">Cancel</button></form>")
    return html_page("Consent required", body)


def new_consent_submit() -> Response:
    """POST /oauth2/authorize (consent form): ticked scopes, or none = deny."""
    state = S()
    user = session_user()
    if user is None:
        return redirect_to_login(save=False)
    authz = state.pending_consents.pop(request.form.get("state", ""), None)
    if authz is None or authz["uid"] != user["uid"] \
            or authz["client_id"] != request.form.get("client_id"):
        return new_error_page("state")
    requested = authz["scopes"]
    ticked = request.form.getlist("scope")
    if any(s not in requested for s in ticked):
        return new_error_redirect(authz["redirect_uri"], "invalid_scope", "scope", authz["state"])
    key = (user["uid"], authz["client_id"])
    authorized = set(ticked) | (state.consents.get(key, set()) & set(requested))
    if authorized and "openid" in requested:
        authorized.add("openid")
    if not authorized:
        state.consents.pop(key, None)
        return new_error_redirect(authz["redirect_uri"], "access_denied", "client_id",
                                  authz["state"])
    state.consents[key] = set(authorized)
    return issue_new_code(authz, [s for s in requested if s in authorized])


def issue_new_code(authz: dict, scopes: list) -> Response:
    state = S()
    code = b64url(secrets.token_bytes(96))            # 128 characters
    state.codes[code] = dict(authz, scopes=list(scopes), expires=time.time() + NEW_CODE_SECONDS,
                             used=False, jtis=[], refresh=[])
    return Response("", 302, {"Location": add_query(authz["redirect_uri"], [
        ("code", code), ("state", authz["state"])])})


@dhis.route("/oauth2/authorize", methods=["GET", "POST"])
@locked
def oauth2_authorize():
    needs("new")
    if request.method == "POST" and "response_type" not in request.values:
        return new_consent_submit()
    return new_authorize_request()


def new_token_error(error: str, status: int = 400) -> Response:
    return json_response({"error": error}, status,
                         {"Cache-Control": "no-store", "Pragma": "no-cache"})


def secret_matches(client: dict, presented: str) -> bool:
    stored = client["secret"]
    if client.get("secret_unhashed"):
        return False      # DHIS2's BCryptPasswordEncoder: "Encoded password does not look like BCrypt"
    if re.match(r"^\$2[aby]?\$\d\d\$", stored):
        if bcrypt is None:
            current_app.logger.warning("client %s has a bcrypt secret but bcrypt is not "
                                       "installed", client["client_id"])
            return False
        return bcrypt.checkpw(presented.encode("utf-8"), stored.encode("utf-8"))
    return consteq(stored, presented)


def new_client_auth():
    """(client, None) or (None, error response) for client_secret_basic / client_secret_post."""
    state = S()
    basic = basic_credentials(url_decode=True)
    has_basic = request.headers.get("Authorization", "").lower().startswith("basic")
    has_post = "client_secret" in request.form
    if has_basic and has_post:
        return None, new_token_error("invalid_request")
    if has_basic:
        method, creds = "client_secret_basic", basic
    elif has_post:
        method = "client_secret_post"
        creds = (request.form.get("client_id", ""), request.form.get("client_secret", ""))
    else:
        return None, new_token_error("invalid_client", 401)
    client = state.clients.get(creds[0]) if creds else None
    if client is None or method not in client["auth_methods"] \
            or not secret_matches(client, creds[1]):
        return None, new_token_error("invalid_client", 401)
    return client, None


def pkce_ok(grant: dict) -> bool:
    verifier = request.form.get("code_verifier")
    challenge = grant.get("code_challenge")
    if not challenge:
        return not verifier
    if not verifier:
        return False
    computed = b64url(hashlib.sha256(verifier.encode("ascii", "replace")).digest())
    return hmac.compare_digest(computed, challenge)


def sign_jwt(claims: dict, header: dict | None = None, key=None) -> str:
    state = S()
    key = key or state.key
    return jwt.encode(header or {"alg": "RS256", "kid": key.kid}, claims, key)


def other_key():
    state = S()
    if state.other_key is None:
        state.other_key = RSAKey.generate_key(2048, parameters={"kid": "unknown-" + make_uid()})
    return state.other_key


def faulty_id_token(claims: dict, mode: str) -> str:
    """Build a deliberately broken id_token (behaviour 'id_token')."""
    state, now = S(), int(time.time())
    claims = dict(claims)
    if mode == "wrong_iss":
        claims["iss"] = "http://evil.example.invalid/"
    elif mode == "wrong_aud":
        claims["aud"] = ["someone-else"]
        claims["azp"] = "someone-else"
    elif mode == "no_sub":
        claims.pop("sub", None)
    elif mode == "expired":
        claims.update(iat=now - 7200, exp=now - 3600, auth_time=now - 7300)
    elif mode == "wrong_nonce":
        claims["nonce"] = "wrong-" + make_uid()
    elif mode == "clock_ahead":
        claims.update(iat=now + 30, auth_time=now + 30, exp=now + 1830)
    elif mode == "just_expired":
        claims.update(iat=now - 1830, auth_time=now - 1830, exp=now - 30)
    if mode in ("wrong_iss", "wrong_aud", "no_sub", "expired", "wrong_nonce", "clock_ahead", "just_expired"):
        return sign_jwt(claims)
    if mode == "no_kid":
        return sign_jwt(claims, {"alg": "RS256", "typ": "JWT"})
    if mode == "unknown_kid":
        key = other_key()
        return sign_jwt(claims, {"alg": "RS256", "kid": key.kid}, key)
    payload = b64url(json.dumps(claims).encode())
    if mode == "alg_none":
        return f"{b64url(json.dumps({'alg': 'none', 'kid': state.kid}).encode())}.{payload}."
    if mode == "hs256_pubkey":
        head = b64url(json.dumps({"alg": "HS256", "kid": state.kid}).encode())
        secret = state.key.as_pem(private=False)
        sig = hmac.new(secret, f"{head}.{payload}".encode(), hashlib.sha256).digest()
        return f"{head}.{payload}.{b64url(sig)}"
    # bad_sig: a valid token whose signature has one byte changed
    head, body, sig = sign_jwt(claims).split(".")
    raw = bytearray(base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4)))
    raw[len(raw) // 2] ^= 0x01
    return f"{head}.{body}.{b64url(bytes(raw))}"


def new_tokens(grant: dict, client: dict, user: dict, issue_refresh: bool,
               refresh_value: str | None = None):
    """Build the 2.42+ token response: (body, None) or (None, error response)."""
    state, now = S(), int(time.time())
    scopes = grant["scopes"]
    if "email" in scopes and not user.get("email"):
        # real DHIS2 fails in its token customizer when the user has no email
        return None, dhis_error(500, "An unexpected server error occurred",
                                "Cannot add claim 'email': the user has no email address")
    with_username = "username" in scopes and state.version >= (2, 42, 5)
    jti = str(uuid.uuid4())
    access = {"sub": user["username"], "aud": [client["client_id"]], "nbf": now,
              "scope": list(scopes), "iss": state.issuer, "exp": now + NEW_ACCESS_SECONDS,
              "iat": now, "jti": jti}
    if with_username:
        access["username"] = user["username"]
    state.jwt_tokens[jti] = {"uid": user["uid"], "client_id": client["client_id"],
                             "scopes": list(scopes), "exp": access["exp"], "revoked": False}
    grant.setdefault("jtis", []).append(jti)
    body = {"access_token": sign_jwt(access)}
    if issue_refresh and "refresh_token" in client["grant_types"]:
        refresh_value = refresh_value or b64url(secrets.token_bytes(96))
        state.refresh_tokens[refresh_value] = {"grant": grant, "client_id": client["client_id"],
                                               "expires": now + NEW_REFRESH_SECONDS}
        grant.setdefault("refresh", []).append(refresh_value)
    if refresh_value:
        body["refresh_token"] = refresh_value
    body["scope"] = " ".join(scopes)
    if "openid" in scopes:
        body["id_token"] = id_token_for(grant, client, user, now, with_username)
    body["token_type"] = "Bearer"
    body["expires_in"] = seconds_left(access["exp"])
    return body, None


def id_token_for(grant: dict, client: dict, user: dict, now: int, with_username: bool) -> str:
    state = S()
    claims = {"sub": user["username"], "aud": [client["client_id"]], "azp": client["client_id"],
              "auth_time": grant.get("auth_time") or now, "iss": state.issuer,
              "exp": now + NEW_ID_TOKEN_SECONDS, "iat": now}
    if grant.get("nonce"):
        claims["nonce"] = grant["nonce"]
    if grant.get("sid"):
        claims["sid"] = grant["sid"]
    if with_username:
        claims["username"] = user["username"]
    if "email" in grant["scopes"] and user.get("email"):
        claims["email"] = user["email"]
    mode = state.take_fault("id_token")
    return faulty_id_token(claims, mode) if mode else sign_jwt(claims)


def revoke_grant(grant: dict):
    state = S()
    for jti in grant.get("jtis", []):
        if jti in state.jwt_tokens:
            state.jwt_tokens[jti]["revoked"] = True
    for value in grant.get("refresh", []):
        state.refresh_tokens.pop(value, None)


def new_grant_code(client: dict) -> Response:
    state = S()
    grant = state.codes.get(request.form.get("code", ""))
    if grant is None or grant["client_id"] != client["client_id"]:
        return new_token_error("invalid_grant")
    if grant["redirect_uri_param"] and request.form.get("redirect_uri") != grant["redirect_uri_param"]:
        return new_token_error("invalid_grant")
    if grant["used"]:
        revoke_grant(grant)           # a replayed code invalidates what it produced
        return new_token_error("invalid_grant")
    if grant["expires"] <= time.time():
        return new_token_error("invalid_grant")
    if not pkce_ok(grant):
        return new_token_error("invalid_grant")
    grant["used"] = True
    user = state.users.get(grant["uid"])
    if user is None or user.get("disabled"):
        return new_token_error("invalid_grant")
    body, error = new_tokens(grant, client, user, issue_refresh=True)
    if error is not None:
        return error
    return json_response(body, 200, {"Cache-Control": "no-store", "Pragma": "no-cache"})


def new_grant_refresh(client: dict) -> Response:
    state = S()
    value = request.form.get("refresh_token", "")
    record = state.refresh_tokens.get(value)
    if record is None or record["client_id"] != client["client_id"] \
            or record["expires"] <= time.time():
        return new_token_error("invalid_grant")
    grant = record["grant"]
    user = state.users.get(grant["uid"])
    if user is None or user.get("disabled"):
        return new_token_error("invalid_grant")
    body, error = new_tokens(grant, client, user, issue_refresh=False, refresh_value=value)
    if error is not None:
        return error
    return json_response(body, 200, {"Cache-Control": "no-store", "Pragma": "no-cache"})


@dhis.route("/oauth2/token", methods=["POST"])
@faulty("token", "new")
def oauth2_token():
    client, error = new_client_auth()
    if error is not None:
        return error
    grant_type = request.form.get("grant_type")
    if not grant_type:
        return new_token_error("invalid_request")
    handlers = {"authorization_code": new_grant_code, "refresh_token": new_grant_refresh}
    if grant_type not in handlers:
        return new_token_error("unsupported_grant_type")
    if grant_type not in client["grant_types"]:
        return new_token_error("unauthorized_client")
    return handlers[grant_type](client)


def verify_access_jwt(token: str):
    """(claims, None) or (None, reason) for a 2.42+ access token."""
    state = S()
    try:
        decoded = jwt.decode(token, state.key, algorithms=["RS256"])
    except (JoseError, ValueError, TypeError) as exc:
        return None, f"An error occurred while attempting to decode the Jwt: {exc}"
    claims = decoded.claims
    record = state.jwt_tokens.get(claims.get("jti", ""))
    if claims.get("iss") != state.issuer or record is None:
        return None, "An error occurred while attempting to decode the Jwt: unknown token"
    if record["revoked"] or claims.get("exp", 0) <= time.time() or record["exp"] <= time.time():
        return None, "Jwt expired"
    return claims, None


@dhis.route("/userinfo", methods=["GET", "POST"])
@faulty("userinfo", "new")
def userinfo():
    state = S()
    token = bearer_value()
    claims, problem = verify_access_jwt(token) if token else (None, "missing token")
    if claims is None:
        header = 'Bearer error="invalid_token", error_description="%s"' % problem.replace('"', "'")
        return Response("", 401, {"WWW-Authenticate": header})
    scopes = claims.get("scope", [])
    if "openid" not in scopes:
        return json_response({"error": "insufficient_scope"}, 403)
    user = state.users.get(state.jwt_tokens[claims["jti"]]["uid"])
    if user is None:
        return json_response({"error": "invalid_token"}, 401)
    info = {"sub": claims["sub"]}
    if "username" in scopes and state.version >= (2, 42, 5):
        info["username"] = user["username"]
    if "email" in scopes and user.get("email"):
        info["email"] = user["email"]
    return json_response(info)


def discovery_document() -> dict:
    state = S()
    root = state.root
    scopes = ["openid", "profile", "email"] + (["username"] if state.version >= (2, 42, 5) else [])
    return {
        "issuer": state.issuer,
        "authorization_endpoint": root + "/oauth2/authorize",
        "device_authorization_endpoint": root + "/oauth2/device_authorization",
        "token_endpoint": root + "/oauth2/token",
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "jwks_uri": root + "/oauth2/jwks",
        "userinfo_endpoint": root + "/userinfo",
        "end_session_endpoint": root + "/connect/logout",
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "revocation_endpoint": root + "/oauth2/revoke",
        "introspection_endpoint": root + "/oauth2/introspect",
        "code_challenge_methods_supported": ["S256"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": scopes,
    }


@dhis.route("/.well-known/openid-configuration")
@faulty("discovery", "new")
def openid_configuration():
    return json_response(discovery_document())


@dhis.route("/.well-known/oauth-authorization-server")
@faulty("discovery", "new")
def oauth_server_metadata():
    return json_response(discovery_document())


@dhis.route("/oauth2/jwks")
@faulty("jwks", "new")
def jwks():
    return json_response({"keys": [S().key.as_dict(private=False)]})


# --------------------------------------------------------------------------------------------
# Test-control endpoints (fake only)
# --------------------------------------------------------------------------------------------

control = Blueprint("fake", __name__)


def json_items():
    data = request.get_json(silent=True)
    if data is None:
        abort(Response(json.dumps({"error": "send a JSON body"}), 400,
                       content_type="application/json"))
    return data if isinstance(data, list) else [data]


@control.route("/users", methods=["POST"])
@locked
def fake_users():
    try:
        results = [S().upsert_user(item) for item in json_items()]
    except ValueError as exc:
        return json_response({"error": str(exc)}, 400)
    return json_response(results if len(results) != 1 else results[0])


@control.route("/clients", methods=["POST"])
@locked
def fake_clients():
    try:
        results = [S().upsert_client(item) for item in json_items()]
    except ValueError as exc:
        return json_response({"error": str(exc)}, 400)
    return json_response(results if len(results) != 1 else results[0])


@control.route("/behaviour", methods=["GET", "POST"])
@locked
def fake_behaviour():
    if request.method == "GET":
        return json_response(S().describe_behaviour())
    try:
        return json_response(S().set_behaviour(json_items()[0]))
    except ValueError as exc:
        return json_response({"error": str(exc)}, 400)


@control.route("/log")
@locked
def fake_log():
    return json_response(S().request_log)


@control.route("/state")
@locked
def fake_state():
    state = S()
    return json_response({"version": state.version_text, "generation": state.generation,
                          "base_path": state.base, "public_url": state.root,
                          "issuer": state.issuer if state.generation == "new" else None,
                          "login_path": state.login_path(),
                          "users": [public_user(u) for u in state.users.values()],
                          "clients": list(state.clients.values()),
                          **state.describe_behaviour()})


@control.route("/reset", methods=["POST"])
@locked
def fake_reset():
    S().reset()
    g.clear_session = True
    return json_response({"ok": True})


@control.route("/login", methods=["POST"])
@locked
def fake_login():
    data = request.get_json(silent=True) or {}
    user = S().check_password(data.get("username", ""), data.get("password", ""))
    if user is None:
        return json_response({"ok": False}, 401)
    sess = log_in(user)
    return json_response({"ok": True, "session": sess["id"]})


@control.route("/rotate-keys", methods=["POST"])
@locked
def fake_rotate_keys():
    S().rotate_keys()
    return json_response({"ok": True, "kid": S().kid})


@control.route("/expire-tokens", methods=["POST"])
@locked
def fake_expire_tokens():
    state = S()
    for record in state.legacy_tokens.values():
        record["expires"] = 0
    for record in state.jwt_tokens.values():
        record["exp"] = 0
    return json_response({"ok": True})


# --------------------------------------------------------------------------------------------
# App factory and request plumbing
# --------------------------------------------------------------------------------------------


def record_request():
    """before_request: remember what was asked (never secret values)."""
    if "/__fake__/" in request.path:
        return
    header = request.headers.get("Authorization", "")
    scheme = header.split(" ", 1)[0] if header else None
    entry = {"time": time.time(), "method": request.method, "path": request.path,
             "args": {k: ("<redacted>" if k in REDACTED_PARAMS else v)
                      for k, v in request.args.items()},
             "form_keys": sorted(request.form.keys()),
             "auth_scheme": scheme,
             "auth_user": (basic_credentials() or (None,))[0] if scheme == "Basic" else None,
             "has_session_cookie": SESSION_COOKIE in request.cookies,
             "x_requested_with": request.headers.get("X-Requested-With")}
    state = S()
    with state.lock:
        state.request_log.append(entry)
        del state.request_log[:-2000]


def set_session_cookie(resp: Response) -> Response:
    """after_request: send JSESSIONID when a session was created, clear it after logout."""
    path = S().base or "/"
    if g.get("clear_session"):
        resp.delete_cookie(SESSION_COOKIE, path=path)
    if g.get("session_id"):
        resp.set_cookie(SESSION_COOKIE, g.session_id, path=path, httponly=True, samesite="Lax")
    return resp


def create_app(config: dict | None = None) -> Flask:
    """A Flask app for one fake DHIS2 server.  ``config`` keys: version, base_path, public_url,
    users, clients, stall_seconds, huge_bytes, legacy_token_seconds (all optional)."""
    config = dict(config or {})
    app = Flask(__name__)
    app.json.sort_keys = False
    state = FakeState(config)
    app.extensions["fake_dhis2"] = state
    app.register_blueprint(dhis, url_prefix=state.base or None)
    app.register_blueprint(control, url_prefix="/__fake__")
    if state.base:
        app.register_blueprint(control, url_prefix=state.base + "/__fake__", name="fake_in_base")
    app.before_request(record_request)
    app.after_request(set_session_cookie)
    return app


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def parse_user_arg(text: str) -> dict:
    parts = text.split(":", 3)
    if len(parts) < 2:
        raise argparse.ArgumentTypeError("--user USERNAME:PASSWORD[:UID[:EMAIL]]")
    user = {"username": parts[0], "password": parts[1]}
    if len(parts) > 2 and parts[2]:
        user["uid"] = parts[2]
    if len(parts) > 3 and parts[3]:
        user["email"] = parts[3]
    return user


def parse_client_arg(text: str) -> dict:
    parts = text.split(":", 2)
    if len(parts) < 2:
        raise argparse.ArgumentTypeError("--client CLIENT_ID:SECRET:REDIRECT_URI[,URI2...]")
    client = {"client_id": parts[0], "secret": parts[1]}
    client["redirect_uris"] = split_list(parts[2]) if len(parts) > 2 else [DEFAULT_REDIRECT_URI]
    return client


def build_config(args) -> dict:
    config = {}
    if args.config:
        with open(args.config, encoding="utf-8") as fh:
            config = json.load(fh)
    if args.version:
        config["version"] = args.version
    config.setdefault("version", "2.40")
    if args.base_path is not None:
        config["base_path"] = args.base_path
    if args.public_url:
        config["public_url"] = args.public_url
    if args.user:
        config["users"] = list(config.get("users") or []) + args.user
    if args.client:
        by_id = {c.get("client_id") or c.get("clientId") or c.get("cid"): c
                 for c in config.get("clients") or []}
        by_id.update({c["client_id"]: c for c in args.client})
        config["clients"] = list(by_id.values())
    return config


def main(argv=None):
    parser = argparse.ArgumentParser(description="Fake DHIS2 server for tests and demos "
                                                 "(NOT for production).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080, help="0 = any free port")
    parser.add_argument("--version", default=None, help="DHIS2 version, e.g. 2.40 or 2.42.5")
    parser.add_argument("--base-path", default=None, help="path prefix, e.g. /dhis")
    parser.add_argument("--public-url", default=None,
                        help="external URL (default http://host:port + base path)")
    parser.add_argument("--config", default=None, help="JSON file with users and clients")
    parser.add_argument("--user", action="append", type=parse_user_arg, default=[],
                        help="USERNAME:PASSWORD[:UID[:EMAIL]] (repeatable)")
    parser.add_argument("--client", action="append", type=parse_client_arg, default=[],
                        help="CLIENT_ID:SECRET:REDIRECT_URI[,REDIRECT_URI2...] (repeatable)")
    parser.add_argument("--quiet", action="store_true", help="no per-request log on stderr")
    args = parser.parse_args(argv)

    if args.quiet:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app = create_app(build_config(args))
    state = app.extensions["fake_dhis2"]
    server = make_server(args.host, args.port, app, threaded=True)
    port = server.server_port
    host = f"[{args.host}]" if ":" in args.host else args.host
    if not state.public_url:
        state.public_url = f"http://{host}:{port}{state.base}"
    print(f"fake-dhis2 listening on http://{host}:{port}/{state.base.lstrip('/')}", flush=True)
    print(f"fake-dhis2: DHIS2 {state.version_text} ({state.generation} OAuth), public URL "
          f"{state.root}/", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
