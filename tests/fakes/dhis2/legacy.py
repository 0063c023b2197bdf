"""Legacy OAuth 2 (Spring Security OAuth, DHIS2 2.30-2.40 and 2.41.1+): /uaa/oauth/authorize with its
approval page, and /uaa/oauth/token."""
from __future__ import annotations

import re
import secrets
import time
import uuid
from urllib.parse import parse_qsl, urlsplit

from flask import Response, request

from .state import b64url, consteq, LEGACY_CODE_ALPHABET, LEGACY_REFRESH_SECONDS, S
from .web import (add_query, basic_credentials, current_session, dhis, esc, faulty, html_page, json_response,
                  locked, needs, redirect_to_login, seconds_left, session_user)


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


def legacy_issue(uid: str, client: dict, scope: str, refresh: str | None = None) -> Response:
    """Create (or re-use, like DefaultTokenServices) an access token; the JSON response. ``refresh``: the
    refresh token a refresh grant keeps (DefaultTokenServices reuses it by default)."""
    state, now = S(), time.time()
    grant = (uid, client["client_id"], scope)
    token = state.legacy_by_grant.get(grant)
    record = state.legacy_tokens.get(token) if token else None
    if record is None or record["expires"] <= now:
        if record is not None:
            state.legacy_tokens.pop(token, None)
        refresh = refresh or (record.get("refresh") if record else None)
        if refresh and state.refresh_tokens.get(refresh, {}).get("expires", 0) <= now:
            refresh = None
        if refresh is None and "refresh_token" in client["grant_types"]:
            refresh = legacy_token_value()
            state.refresh_tokens[refresh] = {"uid": uid, "client_id": client["client_id"],
                                             "scope": scope,
                                             "expires": now + LEGACY_REFRESH_SECONDS}
        token = legacy_token_value()
        record = {"uid": uid, "client_id": client["client_id"], "scope": scope,
                  "expires": now + state.access_seconds(), "refresh": refresh}
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
    state.refresh_grants += 1
    grant = (record["uid"], client["client_id"], record["scope"])
    old = state.legacy_by_grant.pop(grant, None)
    state.legacy_tokens.pop(old, None)
    if state.rotates_refresh_tokens():  # reuseRefreshToken=false: the old one is removed, a new one issued
        state.refresh_tokens.pop(value, None)
        value = None
    return legacy_issue(record["uid"], client, record["scope"], refresh=value)


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
