"""Server-side login sessions. The signed cookie only carries a random session token; the row it names
must exist for the user to be logged in, so logout and admin actions end sessions everywhere at once."""
import secrets
from datetime import timedelta

from blinker import Namespace
from flask import current_app, g, request, session
from flask_login import login_user, logout_user
from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.attributes import set_committed_value

from ..encryption import digest
from ..extensions import db
from ..models import User, UserSession, utcnow

SESSION_TOKEN_KEY = "sid"
# Sent with ``session_ids`` (user_sessions ids) just before those sessions end, whatever ends them (a logout
# button, an application's logout, an administrator): the applications area tells the applications.
sessions_ending = Namespace().signal("sessions-ending")
_INSERT_SESSION = insert(UserSession.__table__)
_SET_LAST_LOGIN = (update(User.__table__).where(User.__table__.c.id == bindparam("user_id"))
                   .values(last_login_at=bindparam("now")))


class AuthMethod:
    """How a session logged in: with a password, or through one identity provider. Stored in
    ``user_sessions.auth_method`` as ``password`` or ``provider:<slug>``; this class alone writes and reads
    that text."""

    __slots__ = ("stored",)
    _PROVIDER = "provider:"

    def __init__(self, stored):
        self.stored = stored

    @classmethod
    def password(cls):
        return cls("password")

    @classmethod
    def provider(cls, slug):
        return cls(cls._PROVIDER + slug)

    @classmethod
    def of(cls, session_row):
        """The method of a ``user_sessions`` row (None for no row)."""
        return cls(session_row.auth_method) if session_row is not None else None

    @property
    def is_password(self):
        return self.stored == "password"

    @property
    def provider_slug(self):
        """The slug of the provider the session came through, or None."""
        return self.stored[len(self._PROVIDER):] if self.stored.startswith(self._PROVIDER) else None

    def __eq__(self, other):
        return isinstance(other, AuthMethod) and other.stored == self.stored

    def __hash__(self):
        return hash(self.stored)

    def __repr__(self):
        return f"AuthMethod({self.stored!r})"


def start_session(user, auth_method=None, *, commit=True):
    """Log ``user`` in with a brand-new session: everything from before login, CSRF token included, is
    dropped (no session fixation). ``auth_method`` is an AuthMethod (a password login by default).
    ``commit=False`` leaves the row for the caller's commit (a login commits
    it together with its audit event)."""
    session.clear()
    token = secrets.token_urlsafe(32)
    now = utcnow()
    # Plain statements rather than ORM bookkeeping: nothing in this request reads the new row.
    db.session.execute(_INSERT_SESSION, {
        "id": digest(token), "user_id": user.id, "auth_method": (auth_method or AuthMethod.password()).stored,
        "client_ip": request.remote_addr,
        "user_agent": (request.user_agent.string or "")[:255], "created_at": now, "last_seen_at": now})
    db.session.execute(_SET_LAST_LOGIN, {"user_id": user.id, "now": now})
    set_committed_value(user, "last_login_at", now)
    if commit:
        db.session.commit()
    session[SESSION_TOKEN_KEY] = token
    session.permanent = True
    login_user(user, remember=False, fresh=True)


def _ending(condition):
    """Announce the end of the sessions matching ``condition`` (only if someone listens: it costs a query)."""
    if sessions_ending.receivers:
        ids = list(db.session.scalars(select(UserSession.id).where(condition)))
        if ids:
            sessions_ending.send(current_app._get_current_object(), session_ids=ids)


def _end_where(condition, commit):
    _ending(condition)
    db.session.execute(delete(UserSession).where(condition))
    if commit:
        db.session.commit()


def end_session():
    """Log the current browser out and forget its server-side session."""
    token = session.get(SESSION_TOKEN_KEY)
    if token:
        _end_where(UserSession.id == digest(token), commit=True)
    logout_user()
    session.clear()


def end_user_sessions(user, commit=True):
    """End every session of ``user`` (deactivated, password changed, role removed...)."""
    _end_where(UserSession.user_id == user.id, commit)


def end_user_sessions_via(user, provider_slug, commit=True):
    """End the user's sessions that were opened through one identity provider."""
    _end_where((UserSession.user_id == user.id) & (UserSession.auth_method == AuthMethod.provider(provider_slug).stored),
               commit)


def end_sessions_via_provider(provider_slug, commit=True):
    """End every session opened through one identity provider (disabled or removed)."""
    _end_where(UserSession.auth_method == AuthMethod.provider(provider_slug).stored, commit)


def login_age():
    """How long ago the current session was opened by a login (or a re-authentication)."""
    row = current_session_row()
    return utcnow() - row.created_at if row is not None else timedelta.max


def current_session_row():
    token = session.get(SESSION_TOKEN_KEY)
    # With its user in the same query: every logged-in request needs both (load_user).
    row = db.session.get(UserSession, digest(token), options=[joinedload(UserSession.user)]) if token else None
    # The identity map holds rows weakly: without this reference the row is gone once load_user returns, and the
    # next call in the same request (a view's access check) would query it again.
    g._geologin_session_row = row
    return row
