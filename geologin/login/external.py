"""Logging in through an identity provider. The core owns everything around the plugin's one job
(turning a callback into an Identity): the login transaction (state, nonce, PKCE, browser binding,
single use, expiry), matching the identity to a local user, binding, the session and the audit."""
import json
import logging
import secrets
import traceback
from datetime import timedelta
from urllib.parse import urlsplit

from authlib.oauth2.rfc7636 import create_s256_code_challenge
from flask import Blueprint, current_app, flash, redirect, request, session, url_for
from flask_babel import lazy_gettext as _l
from sqlalchemy import delete

from .. import audit
from ..encryption import SecretUnreadable, digest
from ..extensions import db
from ..groups import membership
from ..idp import attributes, cache, service, tokens
from ..models import LoginTransaction, IdentityProvider, utcnow
from ..providers.base import CallbackContext, LoginFailure, LoginRequest
from . import dry_run, throttle
from .matching import match_identity, refusal_detail
from .page import REMEMBER_COOKIE
from .redirects import safe_next
from .sessions import AuthMethod, start_session

bp = Blueprint("external", __name__)
logger = logging.getLogger("geologin.external")

BROWSER_KEY = "browser"

# What the user reads for each reason code; the audit log keeps the detail.
MESSAGES = {
    "access_denied": _l("You did not authorize the login at %(label)s, so you are not logged in."),
    "unknown_user": _l("User %(username)s does not exist here. An administrator must first create this user "
                       "(and give it roles) before you can log in with it."),
    "not_allowed": _l("User %(username)s is not allowed to log in through %(label)s. Ask an administrator "
                      "to enable it."),
    "admin_not_allowed": _l("User %(username)s is an administrator: administrators log in through %(label)s "
                            "only when allowed for it one by one. Ask another administrator."),
    "username_taken": _l("The username %(username)s already exists here and is not linked to this account at "
                         "%(label)s. Ask an administrator."),
    "username_invalid": _l("%(label)s names this account %(username)s, which geologin cannot use as a username, "
                           "so no account was created for it. Ask an administrator."),
    "inactive_user": _l("The account %(username)s is deactivated. Ask an administrator."),
    "identity_mismatch": _l("The %(label)s account you used is not the one linked to %(username)s here. "
                            "Ask an administrator to check the link."),
    "state_invalid": _l("This login attempt expired or was not started in this browser. Please try again."),
    "provider_error": _l("%(label)s sent an answer geologin cannot use. Please try again; if it keeps "
                         "happening, tell an administrator."),
    "provider_unavailable": _l("%(label)s cannot be reached right now. Please try again later, or log in "
                               "another way."),
    "not_configured": _l("Logging in through %(label)s is not set up correctly. Tell an administrator."),
}
# After a refusal the browser is still logged in at the server, which would answer the same way again.
ANOTHER_ACCOUNT = _l("To log in with another %(label)s account, log out of %(label)s first.")
REFUSALS = {"access_denied", "unknown_user", "not_allowed", "admin_not_allowed", "identity_mismatch",
            "username_taken", "username_invalid"}


def _browser_binding():
    if BROWSER_KEY not in session:
        session[BROWSER_KEY] = secrets.token_urlsafe(32)
    return digest(session[BROWSER_KEY])


def _fail(reason, provider=None, *, username=None, detail=None, message=None, hint=None):
    """Audit the failure under ``reason`` and show the user ``message`` (a MESSAGES key; the reason's own
    by default), then the plugin's ``hint``. The actor is whoever this browser is logged in as, if anyone."""
    label = provider.label if provider is not None else _l("the identity provider")
    audit.record("login", audit.FAILURE, target=username, reason=reason, detail=detail,
                 provider=provider.slug if provider is not None else None)
    values = {"label": label, "username": username or "?"}
    parts = [MESSAGES[message or reason] % values, hint]
    if provider is not None and (message or reason) in REFUSALS:
        parts.append(ANOTHER_ACCOUNT % values)
    flash(" ".join(str(part) for part in parts if part), "error")
    return redirect(url_for("auth.login"))


def _plugin_step(provider, step, argument):
    """Run one of the plugin's halves of a login: (its result, None), or (None, the failure page)."""
    result, failure = run_plugin(provider, step, argument)
    if failure is None:
        return result, None
    return None, _fail(failure.reason, provider, detail=failure.detail, hint=failure.hint)


def run_plugin(provider, step, argument):
    """(the plugin step's result, None) or (None, a LoginFailure). The one place that catches what a plugin
    raises: a plugin's bug (any other exception) is a provider_error naming the exception's type, with its
    traceback in the log, never a 500."""
    try:
        return step(argument), None
    except LoginFailure as failure:
        return None, failure
    except SecretUnreadable as error:
        return None, LoginFailure(str(error), reason="not_configured")
    except Exception as error:
        # Where it failed, without the exception's message: it may quote what the server sent (a token).
        logger.error("the %s plugin failed during a login through %s: %s\n%s", provider.type, provider.slug,
                     type(error).__name__, "".join(traceback.format_tb(error.__traceback__)).rstrip())
        return None, LoginFailure(f"plugin error: {type(error).__name__}", reason="provider_error")


def reason_message(reason, provider, username=None):
    """The sentence a person reads when a login through ``provider`` ends with ``reason``."""
    message = MESSAGES.get(reason)
    if message is None:
        return reason
    return str(message % {"label": provider.label, "username": username or "?"})


def _transaction_ttl():
    return timedelta(minutes=current_app.config["LOGIN_TRANSACTION_MINUTES"])


@bp.route("/auth/start", methods=["POST"])
@throttle.limit_attempts
def start():
    """Begin a login at the chosen provider (a CSRF-checked POST, never a bare GET)."""
    provider = cache.usable_by_slug(request.form.get("provider", ""))
    if provider is None:
        flash(_l("Choose a server to log in with."), "error")
        return redirect(url_for("auth.login"))
    url, failure = begin(provider, next_url=safe_next(request.form.get("next")))
    if failure:
        return _fail(failure.reason, provider, detail=failure.detail, hint=failure.hint)
    return redirect(url)


def begin(provider, *, next_url=None, purpose=None):
    """Create the single-use login transaction for a usable ``provider`` (a login, or with ``purpose``
    "test" an administrator's dry run) and ask the plugin where to send the browser: (that URL, None), or
    (None, the LoginFailure) with nothing stored."""
    plugin = cache.plugin_object(provider)
    redirect_uri = plugin.redirect_uri()
    if not redirect_uri:
        return None, LoginFailure("PUBLIC_URL is not configured", reason="not_configured")
    state, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(64)
    login_request = LoginRequest(state=state, nonce=secrets.token_urlsafe(32),
                                 code_challenge=create_s256_code_challenge(verifier), redirect_uri=redirect_uri)
    url, failure = run_plugin(provider, plugin.authorization_url, login_request)
    if failure:
        return None, failure
    db.session.execute(delete(LoginTransaction).where(LoginTransaction.created_at < utcnow() - _transaction_ttl()))
    db.session.add(LoginTransaction(
        id=digest(state), provider_id=provider.id, browser_hash=_browser_binding(), nonce=login_request.nonce,
        code_verifier=verifier, redirect_uri=redirect_uri, next_url=next_url, purpose=purpose,
        data_json=json.dumps(login_request.data),
    ))
    db.session.commit()
    return url, None


@bp.route("/auth/test/<slug>", methods=["POST"])
def test_start(slug):
    """An administrator's Test login of provider ``slug`` (login/dry_run.py)."""
    return dry_run.start(slug, begin=begin, message=reason_message)


def _pop_transaction(state):
    """Take the transaction for ``state`` out of the store: whatever happens next, it cannot be reused."""
    if not state or len(state) > 200:
        return None
    transaction = db.session.get(LoginTransaction, digest(state))
    if transaction is None:
        return None
    deleted = db.session.execute(delete(LoginTransaction).where(LoginTransaction.id == transaction.id)).rowcount
    db.session.commit()
    return transaction if deleted == 1 else None  # another request consumed it first


def _callback(slug=None):
    """The callback of a login through a provider: the transaction is checked and spent, the plugin turns the
    answer into an Identity, the core matches it to a user and opens the session."""
    params = {key: request.args.get(key) for key in request.args}
    transaction = _pop_transaction(params.get("state"))
    if transaction is None:
        url_provider = IdentityProvider.by_slug(slug) if slug else None
        return _fail("state_invalid", url_provider, detail="unknown, reused or missing state")
    # The cached copy when the provider is usable; otherwise the row, for the failure's label.
    provider = (cache.usable_by_id(transaction.provider_id)
                or db.session.get(IdentityProvider, transaction.provider_id))
    if transaction.purpose is not None and not dry_run.admin_here():
        return _fail("state_invalid", provider, detail="test login finished by a browser not logged in as an "
                                                       "administrator")
    plugin, failed = _checked_callback(transaction, provider, slug)
    if failed:
        return failed
    callback = CallbackContext(params=params, redirect_uri=transaction.redirect_uri, nonce=transaction.nonce,
                               code_verifier=transaction.code_verifier, data=json.loads(transaction.data_json))
    if transaction.purpose is not None:  # only dry_run.PURPOSE is stored; no other purpose becomes a login
        return dry_run.complete(provider, plugin, callback, run_plugin=run_plugin, message=reason_message)
    identity, failed = _plugin_step(provider, plugin.complete_login, callback)
    if failed:
        return failed
    user, reason = match_identity(identity, provider)
    if reason == "admin_not_allowed":
        return _fail("not_allowed", provider, username=identity.username, message=reason,
                     detail=f"administrator without a permission of their own; external subject "
                            f"{identity.subject_scheme}:{identity.subject}")
    if reason:
        why = refusal_detail(reason, provider)
        return _fail(reason, provider, username=identity.username,
                     detail=f"external subject {identity.subject_scheme}:{identity.subject}"
                            + (f"; {why}" if why else ""))
    # What the provider says of the person now replaces what its previous login said (none: cleared).
    seen = attributes.clean(identity)
    lost_groups = attributes.record(user, provider, seen)
    remarks = [*seen.remarks, tokens.keep(user, provider, identity.tokens)]
    # One commit for the binding, the kept tokens, the session and the audit event (the transaction was taken
    # out before).
    start_session(user, AuthMethod.provider(provider.slug), commit=False)
    audit.record("login", target=user.username, actor=user.username, provider=provider.slug,
                 detail="; ".join(remark for remark in remarks if remark) or None)
    if lost_groups:
        membership.membership_changed.send(None, user_ids={user.id})
    response = redirect(safe_next(transaction.next_url) or url_for("home.index"))
    # Remembered only now: a failed try through another server must not change the login page's choice.
    response.set_cookie(REMEMBER_COOKIE, provider.slug, max_age=365 * 24 * 3600, httponly=True, samesite="Lax",
                        secure=current_app.config["SESSION_COOKIE_SECURE"])
    return response


def _checked_callback(transaction, provider, slug):
    """(the plugin object, None) when the spent ``transaction`` may complete here: fresh, this browser's,
    this provider's, on the redirect URI it was sent and the provider still uses; else (None, the failure)."""
    if transaction.created_at < utcnow() - _transaction_ttl():
        return None, _fail("state_invalid", provider, detail="login transaction expired")
    if session.get(BROWSER_KEY) is None or digest(session[BROWSER_KEY]) != transaction.browser_hash:
        return None, _fail("state_invalid", provider, detail="state belongs to another browser")
    if slug is not None and slug != provider.slug:
        return None, _fail("state_invalid", provider,
                           detail=f"callback for {slug!r} on a transaction for {provider.slug!r}")
    if urlsplit(transaction.redirect_uri).path != request.path:
        return None, _fail("state_invalid", provider,
                           detail="callback arrived on another redirect URI than was sent")
    if not cache.is_usable(provider):
        return None, _fail("not_configured", provider, detail="instance disabled or its plugin missing")
    plugin = cache.plugin_object(provider)
    # The path the provider uses now, not only the one it used at the start: a server without ``iss`` is
    # told apart from another one by the redirect URI alone (checklist item 5).
    if urlsplit(plugin.redirect_uri() or "").path != request.path:
        return None, _fail("state_invalid", provider,
                           detail="callback arrived on a redirect URI the provider no longer uses")
    if slug is None:
        others = [other for other in cache.usable_providers() if other.id != provider.id]
        sharing = service.holders_of_redirect_path(request.path, others)
        if sharing:  # saved before a redirect URI could belong to one provider only
            return None, _fail("not_configured", provider,
                               detail=f"redirect URI shared with {', '.join(repr(o.slug) for o in sharing)}")
    return plugin, None


@bp.route("/auth/<slug>/callback")
@throttle.limit_callbacks
def callback(slug):
    return _no_referrer(_callback(slug))


@throttle.limit_callbacks
def _callback_by_state():
    """A plugin-declared fixed callback path: the provider is found through the state parameter."""
    return _no_referrer(_callback(None))


def _no_referrer(response):
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def init_app(app):
    """Add each fixed callback path that an installed plugin declares (once, whoever declares it)."""
    registry = app.extensions["geologin.plugins"]
    paths = sorted({path for plugin in registry.plugins.values() for path in plugin.provider.callback_paths})
    for number, path in enumerate(paths):
        app.add_url_rule(path, endpoint=f"{throttle.FIXED_CALLBACK_PREFIX}{number}", view_func=_callback_by_state)


def provider_logout_url(session_row):
    """Where to send the browser so the server the session came from ends its login too (OpenID Connect
    RP-initiated logout), or None. A server that cannot say leaves the local logout complete."""
    method = AuthMethod.of(session_row)
    if method is None or method.provider_slug is None:
        return None
    provider = cache.usable_by_slug(method.provider_slug)
    if provider is None:
        return None
    try:
        return cache.plugin_object(provider).logout_url()
    except (LoginFailure, SecretUnreadable) as error:
        logger.warning("no logout at %s: %s", provider.slug, getattr(error, "detail", error))
        return None


