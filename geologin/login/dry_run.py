"""An administrator's Test login (dry run) through a provider: the real flow in the administrator's own
browser, then what the provider answered and what geologin would decide, computed inside a SAVEPOINT that is
always rolled back, so nobody is logged in, bound, created or changed. Started from the provider's admin
screen; the callback (login/external.py) hands a "test" transaction over to ``complete``."""
import json
from datetime import timedelta

from flask import abort, current_app, flash, make_response, redirect, render_template, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import event, select

from .. import audit
from ..extensions import db, login_manager
from ..groups import membership
from ..idp import attributes, cache
from ..models import ExternalIdentity, User
from ..validation import has_control
from .matching import match_identity
from .sessions import AuthMethod, login_age

PURPOSE = "test"
# Set by the admin area (which may read the applications; this area may not): a function of (user, auth
# method text) -> [{"name", "kind", "reason"}], reason None when the user could use the application.
APPLICATIONS_HOOK = "geologin.test_login_applications"
AUDIT_EVENT = "provider.test_login"


def admin_here():
    """Whether this browser is logged in as an administrator with a login as fresh as the admin screens ask
    of a form (ADMIN_FRESH_LOGIN_MINUTES plus the hour a form may stay open)."""
    if not current_user.is_authenticated or not current_user.is_admin:
        return False
    fresh = timedelta(minutes=current_app.config["ADMIN_FRESH_LOGIN_MINUTES"]) + timedelta(hours=1)
    return login_age() <= fresh


def start(slug, *, begin, message):
    """The Test login button of a provider's admin screen (a CSRF-checked POST, routed by login/external.py
    whose ``begin`` and ``message`` it is given): a "test" transaction, then off to the provider like a login."""
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    if not admin_here():
        abort(403)
    provider = cache.usable_by_slug(slug)
    if provider is None:
        flash(_l("Only an enabled provider can be tested with a login."), "error")
        return redirect(url_for("admin.providers.index"))
    url, failure = begin(provider, purpose=PURPOSE)
    if failure:
        audit.record(AUDIT_EVENT, audit.FAILURE, target=provider.slug, provider=provider.slug,
                     reason=failure.reason, detail=failure.detail or None)
        flash(_l("The test login could not start: %(reason)s", reason=message(failure.reason, provider)),
              "error")
        return redirect(url_for("admin.providers.setup", slug=provider.slug))
    return redirect(url)


def complete(provider, plugin, callback, *, run_plugin, message):
    """The callback of a test transaction (the administrator already checked): the plugin's complete_login,
    then the decision computed and rolled back, then the result page and one audit event."""
    identity, failure = run_plugin(provider, plugin.complete_login, callback)
    if failure is not None:
        audit.record(AUDIT_EVENT, audit.FAILURE, target=provider.slug, provider=provider.slug,
                     reason=failure.reason, detail=(failure.detail or "")[:500] or None)
        return _page(provider, failure={"reason": failure.reason, "message": message(failure.reason, provider),
                                        "detail": failure.detail, "hint": failure.hint})
    seen = attributes.clean(identity)
    decision = _decide(identity, provider, seen)
    decision["message"] = message(decision["reason"], provider, identity.username) if decision["reason"] else None
    audit.record(AUDIT_EVENT, target=provider.slug, provider=provider.slug, detail=_summary(identity, decision))
    raw = attributes.clean_raw(identity)
    return _page(provider, identity=identity, seen=seen, decision=decision,
                 raw=json.dumps(raw, indent=2, ensure_ascii=False, default=str) if raw else None)


def _decide(identity, provider, seen):
    """What a login with ``identity`` would do, as plain data. Everything runs as it would at a login
    (matching, binding, accounts on first login, the groups stored on the binding) inside a SAVEPOINT that
    is rolled back whatever happens, so only this function's return value is left of it."""
    usable = isinstance(identity.username, str) and not has_control(identity.username)
    existing = User.by_username(identity.username) if usable and identity.username else None
    existed_id = existing.id if existing is not None else None
    bound_before = existing is not None and db.session.scalar(
        select(ExternalIdentity.id).where(ExternalIdentity.provider_id == provider.id,
                                          ExternalIdentity.user_id == existing.id)) is not None
    fresh = {provider.id: seen.groups}
    session = db.session()
    nested = session.begin_nested()
    event.listen(session, "before_commit", _refuse_commit)
    try:
        user, reason = match_identity(identity, provider)
        if user is not None:
            attributes.record(user, provider, seen)
            groups = membership.of(user, fresh=fresh)
            hook = current_app.extensions.get(APPLICATIONS_HOOK)
            applications = hook(user, AuthMethod.provider(provider.slug).stored) if hook else []
        else:
            groups = membership.of(existing, fresh=fresh) if existing is not None else \
                membership.from_provider(provider, seen.groups)
            applications = []
        decision = {
            "username": user.username if user is not None else (existing.username if existing else None),
            "reason": reason,
            "created": user is not None and existed_id is None,
            "linked": user is not None and not bound_before,
            "groups": [(group.name, [source.provider or "" for source in group.sources]) for group in groups],
            "applications": applications,
        }
    finally:
        event.remove(session, "before_commit", _refuse_commit)
        if nested.is_active:
            nested.rollback()
        else:  # the savepoint went with a rollback of everything (a retried match): drop what came after it
            session.rollback()
    return decision


def _refuse_commit(session):
    """Whatever a login would commit must not be committed by a dry run: a commit there is a bug, refused."""
    raise DryRunCommit("a Test login must not commit: the decision runs inside a savepoint rolled back")


class DryRunCommit(RuntimeError):
    """Something a login runs tried to commit during a Test login."""


def _summary(identity, decision):
    """The audit detail: the provider's subject and the decision in one line."""
    if decision["reason"]:
        outcome = f"refused ({decision['reason']})"
    elif decision["created"]:
        outcome = f"an account {decision['username']} would be created"
    else:
        outcome = f"would log in as {decision['username']}"
    return f"test login of {identity.username} (external subject {identity.subject_scheme}:{identity.subject}): " \
           f"{outcome}"


def _page(provider, **values):
    # The language picker goes back to the setup page, not to this callback URL (its spent code and state).
    setup = url_for("admin.providers.setup", slug=provider.slug)
    return make_response(render_template("admin/providers_test_login.html", instance=provider,
                                         current_page=lambda: setup, **values))
