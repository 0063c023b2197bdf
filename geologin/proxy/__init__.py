"""The read-only DHIS2 proxy: ``GET /dhis2/<slug>/api/<path>`` for a logged-in person, or for an application
holding an access token geologin issued it with the ``dhis2`` scope, forwarded to that DHIS2 with the person's
kept token through the provider's own outbound HTTP client (its hosts, time and size limits). Only the API
paths the provider's allow-list names; never a write (docs/dhis2-tokens.md)."""
import logging
import re

from flask import Blueprint, jsonify, make_response, request
from flask_login import current_user

from .. import audit
from ..apps import clients
from ..apps.server import IssuedToken, token_by_access_token
from ..extensions import csrf
from ..idp import cache, proxy_paths, tokens
from ..models import IdentityProvider
from ..providers import LoginFailure

logger = logging.getLogger(__name__)
bp = Blueprint("dhis2_proxy", __name__)

SCOPE = "dhis2"
MAX_QUERY = 4000
_SEGMENT = re.compile(r"[A-Za-z0-9_~-][A-Za-z0-9_.~-]{0,199}\Z")
# Percent-encoded slash, backslash, dot or percent: a path that decodes into another path is refused.
_ENCODED = re.compile(r"%(2f|5c|2e|25)", re.IGNORECASE)
_WRITES = ["POST", "PUT", "PATCH", "DELETE"]


def _error(status, error, description, **extra):
    response = jsonify({"error": error, "error_description": description, **extra})
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


def _path_problem(path):
    """Why ``path`` (after /api/) may not be forwarded as it is, or None."""
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or ""
    if _ENCODED.search(raw.split("?", 1)[0]):
        return "encoded slashes, dots or percent signs are refused"
    if not path or len(path) > 1000:
        return "the path is empty or too long"
    for segment in path.split("/"):
        if segment in ("", ".", "..") or not _SEGMENT.match(segment):
            return "the path must be plain segments of letters, digits, '-', '_', '.', '~' (no '..', no URL)"
    return None


def _bearer():
    header = request.headers.get("Authorization", "")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


def _caller(provider):
    """(user, application or None) for this request, or an error response: the session's person, or the
    person an application's bearer token (scope dhis2, allowed this provider's tokens) stands for."""
    token = _bearer()
    if token is None:
        if current_user.is_authenticated:
            return current_user._get_current_object(), None
        return _error(401, "login_required", "Log in to geologin, or send an application's bearer token.")
    row = token_by_access_token(token) if token else None
    issued = IssuedToken(row) if row is not None else None
    if issued is None or issued.is_expired() or issued.is_revoked():  # revoked: also no longer allowed
        response = _error(401, "invalid_token", "The bearer token is unknown, expired or revoked.")
        response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
        return response
    if SCOPE not in (row.scope or "").split():
        response = _error(403, "insufficient_scope", f"The token was not issued with the '{SCOPE}' scope.")
        response.headers["WWW-Authenticate"] = f'Bearer error="insufficient_scope", scope="{SCOPE}"'
        return response
    if not clients.may_receive_tokens(row.application, provider):
        audit.record("tokens.proxy", audit.FAILURE, target=row.user.username, reason="application_not_allowed",
                     provider=provider.slug, detail=f"application {row.application.name}")
        return _error(403, "unauthorized_client",
                      f"This application may not use the tokens of {provider.slug}.")
    return row.user, row.application


@bp.route("/dhis2/<slug>/api/<path:path>", methods=["GET", *_WRITES])
@csrf.exempt  # writes are answered 405 below, whoever sends them
def forward(slug, path):
    if request.method != "GET":
        response = _error(405, "method_not_allowed", "The DHIS2 proxy is read-only: only GET is forwarded.")
        response.headers["Allow"] = "GET"
        return response
    provider = IdentityProvider.by_slug(slug) if len(slug) <= 60 else None
    plugin_class = cache.plugin_registry().get(provider.type) if provider is not None else None
    if provider is None or not provider.enabled or not provider.keep_tokens or not getattr(plugin_class, "serves_api",
                                                                                              False):
        return _error(404, "unknown_provider", "No DHIS2 provider that keeps tokens has this name.")
    problem = _path_problem(path)
    if problem is not None or len(request.query_string) > MAX_QUERY:
        return _error(400, "invalid_path", problem or "The query string is too long.")
    caller = _caller(provider)
    if not isinstance(caller, tuple):
        return caller
    user, application = caller
    if not proxy_paths.allows(proxy_paths.of(provider), path):
        return _error(403, "path_not_allowed", f"/api/{path} is not among the paths the proxy forwards for "
                                               f"{provider.slug}.", allowed=proxy_paths.of(provider))
    plugin = cache.plugin_object(provider)
    url = plugin.api_url(path)
    if request.query_string:
        url += "?" + request.query_string.decode("latin-1")
    try:
        access_token = tokens.fresh_access_token(user, provider)
        answer = _get(plugin, url, access_token)
        if answer.status_code == 401:  # revoked at DHIS2 before its expiry: renewed once, then asked again
            answer = _get(plugin, url, tokens.fresh_access_token(user, provider, rejected=access_token))
    except tokens.RefreshUnavailable:  # the tokens are still kept: a later try may work without a new login
        response = _error(503, "temporarily_unavailable", f"{provider.slug} could not renew the person's token "
                                                           "just now; try again shortly.")
        response.headers["Retry-After"] = str(int(tokens.RETRY_AFTER_FAILURE.total_seconds()))
        return response
    except tokens.LoginAgain as again:
        return _error(401, "login_again", f"Log in through {provider.slug} again.", reason=again.reason)
    except LoginFailure as failure:  # unreachable, too slow, too large, 5xx, a host not the provider's
        logger.warning("DHIS2 proxy to %s failed: %s", provider.slug, failure)
        return _error(502, "bad_gateway", f"{provider.slug} could not be reached or answered badly.")
    content_type = answer.headers.get("Content-Type", "")
    if not content_type.split(";")[0].strip().lower().endswith("json"):
        return _error(502, "bad_gateway", f"{provider.slug} did not answer with JSON (HTTP {answer.status_code}).")
    response = make_response(answer.content, answer.status_code)
    response.headers["Content-Type"] = content_type[:200]
    response.headers["Cache-Control"] = "no-store"
    return response


def _get(plugin, url, access_token):
    return plugin.http.get(url, headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"})


def init_app(app):
    app.register_blueprint(bp)
