"""The sliver of the Web API geologin calls: /api/me, /api/system/info and ping, /api/loginConfig,
with DHIS2's ways to authenticate them (legacy bearer tokens, 2.42.5+ JWTs, Basic, the session)."""
from __future__ import annotations

import time

from flask import Response, abort, request

from .oidc import verify_access_jwt
from .state import S
from .web import (basic_credentials, bearer_value, dhis, dhis_error, faulty, json_response, locked,
                  session_user, unauthenticated_api)


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
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme == "ApiToken":  # a personal access token (2.37+)
        user = state.check_api_token(value.strip())
        if user is None:
            return None, dhis_error(401, "Unauthorized", "Invalid API token")
        return user, None
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
    roles = user.get("userRoles") or ([{"id": "yrB6vc5Ip3r", "name": "Superuser"}] if admin
                                      else [{"id": "Euq3XfEIEbx", "name": "Data entry clerk"}])
    roles = [dict(role) for role in roles]
    name = f"{user['firstName']} {user['surname']}"
    me = {"id": user["uid"]}
    if version >= (2, 38, 0):
        me["username"] = user["username"]
    me.update({"firstName": user["firstName"], "surname": user["surname"]})
    if user.get("email"):
        me["email"] = user["email"]
    me.update({"name": name, "displayName": name,
               "created": "2024-01-01T00:00:00.000", "lastUpdated": "2024-01-01T00:00:00.000",
               "organisationUnits": [dict(unit) for unit in user.get("organisationUnits", [])],
               "userGroups": [dict(group) for group in user.get("userGroups", [])],
               "authorities": list(user.get("authorities", [])),
               "settings": {"keyUiLocale": "en", "keyDbLocale": "en"}})
    if version >= (2, 38, 0):
        me["userRoles"] = roles
    if version < (2, 42, 0):
        cred_id = user["credentials_uid"] if version < (2, 38, 0) else user["uid"]
        me["userCredentials"] = {"id": cred_id, "username": user["username"],
                                 "userRoles": roles, "disabled": False}
    return me


def parse_fields(text: str) -> dict:
    """DHIS2's ``fields`` parameter as {field: nested spec or None}: ``id,userGroups[id,name]``. Presets
    ``*`` and ``:all`` mean every field; ``!name`` leaves one out."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += (char == "[") - (char == "]")
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    spec = {}
    for part in (p.strip() for p in parts):
        name, bracket, rest = part.partition("[")
        if name.strip():
            spec[name.strip()] = parse_fields(rest[:rest.rfind("]")]) if bracket else None
    return spec


def filter_fields(value, spec: dict):
    """``value`` with only the fields ``spec`` names, as DHIS2's field filter: unknown fields are left out
    silently; a list of objects named without sub-fields comes as references (their ``id`` only)."""
    if isinstance(value, list):
        return [filter_fields(item, spec) for item in value]
    if not isinstance(value, dict):
        return value
    if "*" in spec or ":all" in spec:
        spec = {**{key: None for key in value}, **{k: v for k, v in spec.items() if k not in ("*", ":all")}}
    out = {}
    for field, nested in spec.items():
        if field.startswith("!") or field not in value or ("!" + field) in spec:
            continue
        item = value[field]
        if nested is not None:
            out[field] = filter_fields(item, nested)
        elif isinstance(item, list) and item and all(isinstance(x, dict) and "id" in x for x in item):
            out[field] = [{"id": x["id"]} for x in item]
        else:
            out[field] = item
    return out


@dhis.route("/api/me")
@faulty("me")
def api_me():
    user, error = api_user()
    if error is not None:
        return error
    me = me_json(user, S().version)
    fields = request.args.get("fields")
    return json_response(filter_fields(me, parse_fields(fields)) if fields else me)


@dhis.route("/api/users")
@locked
def api_users():
    """The users, filtered as ``filter=userGroups.id:eq:ID`` asks, with ``fields`` and DHIS2's paging
    (``paging=false``: every user at once)."""
    user, error = api_user()
    if error is not None:
        return error
    state = S()
    everyone = sorted(state.users.values(), key=lambda u: u["username"])
    for condition in request.args.getlist("filter"):
        path, _, rest = condition.partition(":")
        operator, _, wanted = rest.partition(":")
        if path != "userGroups.id" or operator != "eq":
            return dhis_error(400, "Bad Request", f"fake DHIS2 supports only userGroups.id:eq, not {condition!r}")
        everyone = [u for u in everyone if any(g.get("id") == wanted for g in u.get("userGroups", []))]
    rows = []
    for member in everyone:
        row = {"id": member["uid"], "firstName": member["firstName"], "surname": member["surname"],
               "userCredentials": {"username": member["username"]}}
        if state.version >= (2, 38, 0):
            row["username"] = member["username"]
        if member.get("email"):
            row["email"] = member["email"]
        rows.append(row)
    fields = request.args.get("fields")
    rows = filter_fields(rows, parse_fields(fields)) if fields else rows
    if request.args.get("paging") == "false":
        return json_response({"users": rows})
    size = max(1, int(request.args.get("pageSize") or 50))
    page = max(1, int(request.args.get("page") or 1))
    pages = max(1, -(-len(rows) // size))
    return json_response({"pager": {"page": page, "pageCount": pages, "total": len(rows), "pageSize": size},
                          "users": rows[(page - 1) * size:page * size]})


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
