"""The control API tests use (``/__fake__/...``): add users and clients, switch failure modes, read the
request log, reset, log a browser in, rotate keys, expire or revoke tokens."""
from __future__ import annotations

import json

from flask import Blueprint, Response, abort, g, request

from .oidc import verify_access_jwt
from .state import public_user, S
from .web import json_response, locked, log_in


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


@control.route("/revoke", methods=["POST"])
@locked
def fake_revoke():
    """Revoke tokens as a DHIS2 admin would (a disabled OAuth2 client authorisation, a cleared token
    store): JSON {"refresh_token": value} and/or {"access_token": value}, or {"username": name} for every
    token of that user. Answers how many tokens were revoked."""
    state, data = S(), json_items()[0]
    count = 0
    refresh, access, username = data.get("refresh_token"), data.get("access_token"), data.get("username")
    user = state.user_by_name(username) if username else None
    if username and user is None:
        return json_response({"error": f"no user {username!r}"}, 400)
    for value, record in list(state.refresh_tokens.items()):
        uid = record.get("uid") or record.get("grant", {}).get("uid")
        if value == refresh or (user is not None and uid == user["uid"]):
            del state.refresh_tokens[value]
            count += 1
    for value, record in list(state.legacy_tokens.items()):
        if value == access or (user is not None and record["uid"] == user["uid"]):
            record["expires"] = 0
            count += 1
    for record in state.jwt_tokens.values():
        if user is not None and record["uid"] == user["uid"]:
            record["revoked"] = True
            count += 1
    if access and state.generation == "new":
        claims, _ = verify_access_jwt(access)
        if claims is not None:
            state.jwt_tokens[claims["jti"]]["revoked"] = True
            count += 1
    return json_response({"revoked": count})
