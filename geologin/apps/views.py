"""The OpenID provider's endpoints: discovery, keys, authorization (with geologin's own login page, consent
and access rules), token, userinfo, revocation, introspection and RP-initiated logout."""
from urllib.parse import urlencode

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import AccessDeniedError, InvalidRequestError
from authlib.oidc.core.errors import ConsentRequiredError, LoginRequiredError
from flask import Blueprint, flash, g, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import refresh as refresh_language
from flask_login import current_user, login_required
from flask_wtf.csrf import CSRFError, validate_csrf
from sqlalchemy import select
from wtforms import ValidationError

from .. import audit
from ..extensions import csrf, db
from ..i18n import available_locales, remember_locale, supported
from ..login.sessions import current_session_row, end_session, login_age
from ..models import Application, Consent, utcnow
from . import access, clients, keys
from .server import SCOPES, TOKEN_EXCHANGE, issuer, server

bp = Blueprint("apps", __name__)

# After prompt=login (or max_age=0) the person is sent to log in again; the authorization request then comes
# back asking for a login at most this old, which the new login is.
FRESH_LOGIN_SECONDS = 600
_CORS_ENDPOINTS = {"apps.discovery", "apps.jwks", "apps.token", "apps.userinfo", "apps.revoke", "apps.introspect"}


@bp.after_request
def _headers(response):
    """Browser applications (public clients) call these endpoints from their own origin; nothing here reads
    cookies, so any origin may. Token responses are never cached (RFC 6749 5.1)."""
    if request.endpoint in _CORS_ENDPOINTS:
        response.headers["Access-Control-Allow-Origin"] = "*"
        response.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
    if request.endpoint in ("apps.token", "apps.userinfo", "apps.introspect"):
        response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/.well-known/openid-configuration")
def discovery():
    base = issuer()
    return jsonify({
        "issuer": base,
        "authorization_endpoint": base + url_for("apps.authorize"),
        "token_endpoint": base + url_for("apps.token"),
        "userinfo_endpoint": base + url_for("apps.userinfo"),
        "jwks_uri": base + url_for("apps.jwks"),
        "end_session_endpoint": base + url_for("apps.logout"),
        "revocation_endpoint": base + url_for("apps.revoke"),
        "introspection_endpoint": base + url_for("apps.introspect"),
        "scopes_supported": list(SCOPES),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", TOKEN_EXCHANGE],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": list(keys.ALGORITHMS),
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": ["sub", "iss", "aud", "azp", "exp", "iat", "auth_time", "nonce", "at_hash", "sid", "amr",
                             "idp", "preferred_username", "name", "updated_at", "locale", "email", "email_verified",
                             "groups"],
        "prompt_values_supported": ["none", "login", "consent"],
        "ui_locales_supported": [code.replace("_", "-") for code in available_locales()],
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "authorization_response_iss_parameter_supported": True,
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
        "frontchannel_logout_supported": False,
    })


@bp.route("/oauth/jwks")
def jwks():
    response = jsonify(keys.public_key_set())
    # Short, so a key rotated in reaches relying parties well within the grace period before it signs.
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


def _error_location(error):
    """Where an authorization error goes back to the application, with ``iss`` (RFC 9207); None when its
    redirect URI is not known to be the application's."""
    if not error.redirect_uri:
        return None
    location = server.handle_error_response(None, error).headers.get("Location")
    return location + ("&" if "?" in location else "?") + urlencode({"iss": issuer()}) if location else None


def _error_response(error, state=None):
    """An authorization error: back to the application when its redirect URI is known and valid; otherwise a
    page at geologin, never a redirect (RFC 9700 4.1)."""
    if state is not None:
        error.state = state
    audit.record("app.authorize", audit.FAILURE, reason=error.error, detail=error.description)
    location = _error_location(error)
    if location:
        return redirect(location)
    return render_template("apps/error.html", code=error.error, description=error.description), 400


def _apply_ui_locales(payload):
    """``ui_locales``: the first language the application asks for that geologin speaks, for this page."""
    for tag in (payload.get("ui_locales") or "").split()[:10]:
        code = supported(tag.replace("-", "_")) or supported(tag.split("-")[0])
        if code:
            g.requested_locale = code
            refresh_language()
            return code
    return None


def _max_age(payload, state, grant):
    value = payload.get("max_age")
    if value in (None, ""):
        return None
    if not str(value).isdigit() or len(str(value)) > 9:
        raise InvalidRequestError("'max_age' must be a number of seconds.", redirect_uri=grant.redirect_uri,
                                  state=state)
    return int(value)


def _authorization_params(payload):
    """The application's authorization request, without the consent form's own fields, to come back to."""
    return {key: value for key, value in payload.items() if key not in ("csrf_token", "consent_decision")}


def _login_redirect(payload, fresh, locale):
    """Off to geologin's own login page (every login method), coming back here afterwards. ``fresh``: the
    person is logged in but must log in again (prompt=login, max_age)."""
    params = _authorization_params(payload)
    if fresh:
        prompts = [p for p in (params.get("prompt") or "").split() if p != "login"]
        if prompts:
            params["prompt"] = " ".join(prompts)
        else:
            params.pop("prompt", None)
        max_age = params.get("max_age")
        if not (max_age and str(max_age).isdigit() and 0 < int(max_age) <= FRESH_LOGIN_SECONDS):
            params["max_age"] = str(FRESH_LOGIN_SECONDS)
    back = url_for("apps.authorize") + "?" + urlencode(params)
    login_args = {"next": back}
    if fresh:
        login_args["prompt"] = "login"
    hint = payload.get("login_hint")
    if isinstance(hint, str) and 0 < len(hint) <= 150:
        login_args["login_hint"] = hint
    response = redirect(url_for("auth.login", **login_args))
    if locale:
        remember_locale(response, locale)
    return response


def _consent_covers(user, application, scope):
    row = db.session.get(Consent, (user.id, application.id))
    return row is not None and set(scope.split()) <= set(row.scope.split())


@bp.route("/oauth/authorize", methods=["GET", "POST"])
@csrf.exempt  # an authorization request may come by POST; the consent decision checks its own token
def authorize():
    user = current_user._get_current_object() if current_user.is_authenticated else None
    try:
        grant = server.get_consent_grant(end_user=user)
    except OAuth2Error as error:
        return _error_response(error)
    payload = grant.request.payload.data
    state = grant.request.payload.state
    application = grant.client.application
    locale = _apply_ui_locales(payload)
    prompts = set((payload.get("prompt") or "").split())
    try:
        max_age = _max_age(payload, state, grant)
    except OAuth2Error as error:
        return _error_response(error)
    session_row = current_session_row() if user is not None else None
    too_old = max_age is not None and (max_age == 0 or login_age().total_seconds() > max_age)
    if user is None or session_row is None or "login" in prompts or too_old:
        if "none" in prompts:
            return _error_response(LoginRequiredError(redirect_uri=grant.redirect_uri), state)
        return _login_redirect(payload, fresh=user is not None, locale=locale)

    reason = access.refusal(application, user, session_row.auth_method)
    if reason is not None:
        audit.record("app.authorize", audit.FAILURE, target=user.username, reason=reason,
                     detail=f"application {application.name}")
        back = AccessDeniedError(redirect_uri=grant.redirect_uri, state=state)
        if "none" in prompts:
            return _error_response(back)
        return render_template("apps/refused.html", application=application,
                               back_url=_error_location(back)), 403

    scope = grant.request.scope or ""
    needs_consent = not application.first_party and ("consent" in prompts
                                                      or not _consent_covers(user, application, scope))
    if needs_consent:
        if "none" in prompts:
            return _error_response(ConsentRequiredError(redirect_uri=grant.redirect_uri), state)
        decision = request.form.get("consent_decision") if request.method == "POST" else None
        if decision is None:
            return _consent_page(application, scope, payload)
        try:
            validate_csrf(request.form.get("csrf_token"))
        except (ValidationError, CSRFError):
            flash(_("The form expired. Please try again."), "error")
            return _consent_page(application, scope, payload, status=400)
        if decision != "allow":
            audit.record("app.consent", audit.FAILURE, target=user.username, reason="consent_refused",
                         detail=f"application {application.name}")
            return _error_response(AccessDeniedError(redirect_uri=grant.redirect_uri), state)
        _remember_consent(user, application, scope)

    grant.request.session_row = session_row
    response = server.create_authorization_response(grant=grant, grant_user=user)
    audit.record("app.authorize", target=user.username, detail=f"application {application.name}; scope {scope}")
    return response


def _consent_page(application, scope, payload, status=200):
    action = url_for("apps.authorize") + "?" + urlencode(_authorization_params(payload))
    scopes = [s for s in scope.split() if s != "openid"]
    return render_template("apps/consent.html", application=application, scopes=scopes, action=action,
                           attribute_claims=clients.attribute_claim_names(application),
                           token_providers=clients.token_provider_slugs(application)), status


def _remember_consent(user, application, scope):
    row = db.session.get(Consent, (user.id, application.id))
    if row is None:
        db.session.add(Consent(user_id=user.id, application_id=application.id, scope=scope))
    else:
        row.scope = " ".join(sorted(set(row.scope.split()) | set(scope.split())))
        row.granted_at = utcnow()
    audit.record("app.consent", target=user.username, detail=f"application {application.name}; scope {scope}",
                 commit=False)
    db.session.commit()


@bp.route("/oauth/token", methods=["POST"])
@csrf.exempt
def token():
    return server.create_token_response()


@bp.route("/oauth/userinfo", methods=["GET", "POST"])
@csrf.exempt
def userinfo():
    return server.create_endpoint_response("userinfo")


@bp.route("/oauth/revoke", methods=["POST"])
@csrf.exempt
def revoke():
    return server.create_endpoint_response("revocation")


@bp.route("/oauth/introspect", methods=["POST"])
@csrf.exempt
def introspect():
    return server.create_endpoint_response("introspection")


@bp.route("/oauth/logout", methods=["GET", "POST"])
@csrf.exempt  # the confirmation form checks its own token; an application may send the request by POST
def logout():
    """RP-initiated logout. With a valid ``id_token_hint`` naming the logged-in person, the session ends and
    the browser goes to a post-logout URI registered for that application; otherwise the person confirms,
    and no redirect follows."""
    try:
        end_request = server.validate_endpoint_request("end_session")
        claims = end_request.id_token_claims
        if claims is not None and claims.get("iss") != issuer():
            raise InvalidRequestError("The id_token_hint was not issued here.")
    except OAuth2Error:
        end_request, claims = None, None
    logged_in = current_user.is_authenticated
    hint_matches = claims is not None and (not logged_in or claims.get("sub") == current_user.subject)
    if hint_matches:
        _end_session_from(end_request.client)
        if end_request.redirect_uri:
            return redirect(end_request.redirect_uri)
        return render_template("apps/logged_out.html"), 200
    if not logged_in:
        return render_template("apps/logged_out.html"), 200
    if request.method == "POST" and request.form.get("confirm") == "yes":
        try:
            validate_csrf(request.form.get("csrf_token"))
        except (ValidationError, CSRFError):
            return render_template("apps/logout_confirm.html", unverified=True), 400
        _end_session_from(end_request.client if end_request else None)
        return render_template("apps/logged_out.html"), 200
    return render_template("apps/logout_confirm.html", unverified=claims is None and bool(
        request.values.get("id_token_hint") or request.values.get("post_logout_redirect_uri"))), 200


def _end_session_from(client):
    if not current_user.is_authenticated:
        return
    username = current_user.username
    end_session()
    audit.record("logout", target=username, actor=username,
                 detail=f"from application {client.application.name}" if client is not None else "from an application")


@bp.route("/account/applications")
@login_required
def my_applications():
    """The applications the signed-in person allowed, each with a button to withdraw."""
    rows = db.session.execute(select(Consent, Application).join(Application, Application.id == Consent.application_id)
                              .where(Consent.user_id == current_user.id).order_by(Application.name)).all()
    return render_template("apps/my_applications.html", consents=rows)


@bp.route("/account/applications/<int:application_id>/withdraw", methods=["POST"])
@login_required
def withdraw(application_id):
    """Withdraw consent: the application's tokens for this person die now, and it must ask again."""
    user = current_user._get_current_object()
    application = db.session.get(Application, application_id)
    if application is None or db.session.get(Consent, (user.id, application.id)) is None:
        flash(_("You had not allowed this application."), "error")
        return redirect(url_for("apps.my_applications")), 303
    sids = clients.revoke_for_users(application, [user.id])
    audit.record("app.consent_withdrawn", target=user.username, detail=f"application {application.name}",
                 commit=False)
    db.session.commit()
    clients.tokens_revoked.send(application, sids=sids)
    flash(_("%(name)s no longer receives anything from your account.", name=application.name), "info")
    return redirect(url_for("apps.my_applications")), 303


def init_app(app):
    app.register_blueprint(bp)
