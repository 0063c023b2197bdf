"""DHIS2 2.42+ (Spring Authorization Server): discovery, jwks, authorize with its consent page, token
and userinfo, and the deliberately broken id_tokens tests ask for."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import time
import uuid
from urllib.parse import urlsplit

from flask import Response, current_app, request
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey

try:  # optional: only needed for clients whose secret is given as a bcrypt hash
    import bcrypt  # type: ignore
except ImportError:  # pragma: no cover - depends on the environment
    bcrypt = None

from .state import (b64url, consteq, make_uid, NEW_CODE_SECONDS, NEW_ID_TOKEN_SECONDS,
                    NEW_REFRESH_SECONDS, S, SPRING_AS_ERROR_URI)
from .web import (add_query, basic_credentials, bearer_value, current_session, dhis, dhis_error, esc, faulty,
                  html_page, is_loopback_ip, json_response, locked, needs, redirect_to_login, seconds_left,
                  session_user, with_port)


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
              "scope": list(scopes), "iss": state.issuer, "exp": now + state.access_seconds(),
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
    state.refresh_grants += 1
    if state.rotates_refresh_tokens():  # each refresh token is used once: the answer carries the next one
        state.refresh_tokens.pop(value, None)
        if value in grant.get("refresh", []):
            grant["refresh"].remove(value)
        body, error = new_tokens(grant, client, user, issue_refresh=True)
    else:
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
