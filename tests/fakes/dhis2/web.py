"""What every fake DHIS2 endpoint shares: responses, DHIS2's own JSESSIONID sessions, the failure-mode
decorators, and ``dhis``, the blueprint the endpoint modules add their routes to."""
from __future__ import annotations

import base64
import binascii
import functools
import html
import ipaddress
import json
import math
import secrets
import time
from urllib.parse import quote, unquote_plus, urlsplit, urlunsplit

from flask import Blueprint, Response, abort, g, request

from .state import b64url, IDENTITY_KEYS, S, SESSION_COOKIE


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


# -- DHIS2's sessions (its own JSESSIONID, in memory) -------------------------------------------


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


# -- failure modes --------------------------------------------------------------------------------


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


# The DHIS2 blueprint (served under the base path): login, api, legacy and oidc add their routes to it.
dhis = Blueprint("dhis", __name__)
