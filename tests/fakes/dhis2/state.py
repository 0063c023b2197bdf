"""What one fake DHIS2 server remembers (its version, users, OAuth clients, sessions, codes and
tokens) and the failure switches tests flip; everything goes through ``FakeState.lock``."""
from __future__ import annotations

import base64
import hmac
import re
import secrets
import string
import threading
import uuid

from flask import current_app
from joserfc.jwk import RSAKey


SESSION_COOKIE = "JSESSIONID"
DEFAULT_SECRET = "0123456789abcdef0123456789abcdef0123"
DEFAULT_REDIRECT_URI = "http://127.0.0.1:5000/auth/dhis2/callback"
# Groups and org units of DHIS2's Sierra Leone demo database, for the default users.
MALARIA = {"id": "wl5cDMuUhmF", "name": "Malaria programme"}
DATA_MANAGERS = {"id": "Kk12LkEWtXp", "name": "Data managers"}
HIV = {"id": "B6JNeAQ6akX", "name": "HIV programme"}
SIERRA_LEONE = {"id": "ImspTQPwCqd", "name": "Sierra Leone", "path": "/ImspTQPwCqd"}
BO = {"id": "O6uvpzGd5pu", "name": "Bo", "path": "/ImspTQPwCqd/O6uvpzGd5pu"}
BOMBALI = {"id": "fdc6uOvgoji", "name": "Bombali", "path": "/ImspTQPwCqd/fdc6uOvgoji"}
DEFAULT_USERS = [
    {"username": "admin", "password": "district", "uid": "M5zQapPyTZI",
     "firstName": "John", "surname": "Traore", "authorities": ["ALL"],
     "userGroups": [DATA_MANAGERS], "organisationUnits": [SIERRA_LEONE]},
    {"username": "alice", "password": "Alice-pass-123", "uid": "xE7jOejl9FI",
     "email": "alice@example.org", "firstName": "Alice", "surname": "Example",
     "userGroups": [MALARIA, DATA_MANAGERS], "organisationUnits": [BO, BOMBALI]},
    {"username": "bob", "password": "Bob-pass-123", "uid": "pAhIq1x2f9a",
     "firstName": "Bob", "surname": "Example", "userGroups": [HIV], "organisationUnits": [BO]},
]
# Members of a user's lists (userGroups, userRoles, organisationUnits) as DHIS2 references them.
MEMBERSHIPS = ("userGroups", "userRoles", "organisationUnits")
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


# -- users and clients ---------------------------------------------------------------------------


def normalise_user(data: dict, existing: dict | None = None) -> dict:
    user = dict(existing or {})
    for key in ("username", "password", "uid", "firstName", "surname", "disabled", "authorities"):
        if key in data and data[key] is not None:
            user[key] = data[key]
    for key in MEMBERSHIPS:  # replaced whole, as DHIS2's user editor does; absent: unchanged
        if key in data:
            if not isinstance(data[key], list) or not all(isinstance(item, dict) for item in data[key]):
                raise ValueError(f"{key} must be a list of objects")
            user[key] = [dict(item) for item in data[key]]
    if "api_tokens" in data:  # personal access tokens (d2pat_...), for Authorization: ApiToken
        user["api_tokens"] = [str(token) for token in data["api_tokens"] or []]
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
    user.setdefault("userGroups", [])
    user.setdefault("organisationUnits", [dict(SIERRA_LEONE)])
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
    return {k: v for k, v in user.items() if k not in ("password", "api_tokens")}


# -- the in-memory state --------------------------------------------------------------------------


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
            self.access_token_seconds = None   # None: the generation's default lifetime
            self.rotate_refresh_tokens = None  # None: the generation's default (2.42+ rotates, /uaa reuses)
            self.refresh_grants = 0           # refresh-grant requests answered, for single-refresh tests

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

    def check_api_token(self, token: str):
        for user in self.users.values():
            if not user.get("disabled") and any(consteq(known, token) for known in user.get("api_tokens", [])):
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
        if "access_token_seconds" in data:
            value = data["access_token_seconds"]
            self.access_token_seconds = None if value is None else int(value)
        if "rotate_refresh_tokens" in data:
            value = data["rotate_refresh_tokens"]
            self.rotate_refresh_tokens = None if value is None else bool(value)
        return self.describe_behaviour()

    def describe_behaviour(self) -> dict:
        return {"behaviour": dict(self.behaviour), "once": sorted(self.behaviour_once),
                "stall_seconds": self.stall_seconds, "huge_bytes": self.huge_bytes,
                "access_token_seconds": self.access_token_seconds,
                "rotate_refresh_tokens": self.rotates_refresh_tokens(), "refresh_grants": self.refresh_grants}

    def access_seconds(self) -> int:
        """How long an access token issued now lives (the test control overrides the version's default)."""
        if self.access_token_seconds is not None:
            return self.access_token_seconds
        return NEW_ACCESS_SECONDS if self.generation == "new" else self.legacy_token_seconds

    def rotates_refresh_tokens(self) -> bool:
        """Whether a refresh grant replaces the refresh token: 2.42+ rotates (each refresh token is single
        use), /uaa's DefaultTokenServices reuses it (reuseRefreshToken defaults to true)."""
        if self.rotate_refresh_tokens is not None:
            return self.rotate_refresh_tokens
        return self.generation == "new"

    def take_fault(self, target: str):
        mode = self.behaviour.get(target)
        if mode and target in self.behaviour_once:
            self.behaviour.pop(target, None)
            self.behaviour_once.discard(target)
        return mode


def S() -> FakeState:
    return current_app.extensions["fake_dhis2"]
