"""Every change to local users goes through here, so the admin screens, the setup page and the CLI share
one set of rules (validation, the last-admin guard, ending sessions) and one audit trail."""
import re

from flask_babel import gettext as _
from sqlalchemy import func, or_, select

from .. import audit
from ..login import throttle
from ..extensions import db
from ..models import KeptToken, User, utcnow
from .passwords import hash_password, password_problems
from ..login.sessions import end_user_sessions

USERNAME_MAX = 150
# Letters and digits of any script, plus . _ @ + - : what DHIS2 and most identity providers allow.
_USERNAME = re.compile(r"[\w.@+-]+")  # fullmatch: "$" would let a final newline through
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


class UserError(ValueError):
    """A change was refused; the message is meant for the person who asked for it."""

    def __init__(self, message, field=None):
        super().__init__(message)
        self.message = message
        self.field = field


def username_problem(username):
    if not username:
        return _("Enter a username.")
    if len(username) > USERNAME_MAX:
        return _("A username has at most %(n)d characters.", n=USERNAME_MAX)
    if not _USERNAME.fullmatch(username):
        return _("Use only letters, digits and . _ @ + - in a username (no spaces).")
    return None


def email_problem(email):
    if email and (len(email) > 254 or not _EMAIL.fullmatch(email)):
        return _("Enter a valid email address, like name@example.org.")
    return None


def search_users(query=None):
    """A select of users matching ``query`` in username, display name or email, ordered by username."""
    statement = select(User).order_by(User.username)
    if query:
        pattern = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        statement = statement.where(or_(
            User.username.ilike(pattern, escape="\\"),
            User.display_name.ilike(pattern, escape="\\"),
            User.email.ilike(pattern, escape="\\"),
        ))
    return statement


def users_with_ids(ids):
    """The users with these ids, in username order (so what names them, an audit entry, is stable)."""
    return list(db.session.scalars(select(User).where(User.id.in_(ids)).order_by(User.username)))


def _check_password(password, username):
    problems = password_problems(password, username)
    if problems:
        raise UserError(" ".join(str(p) for p in problems), field="password")


def create_user(username, *, display_name="", email=None, password=None, is_admin=False,
                password_login_allowed=True, actor=None, detail=None, commit=True):
    """Create a local user; ``password=None`` leaves the account without a password. ``commit=False``
    only flushes (a login creating the account commits it with its session, or a dry run rolls it back)."""
    problem = username_problem(username)
    if problem:
        raise UserError(problem, field="username")
    if User.by_username(username) is not None:
        raise UserError(_("A user named %(name)s already exists.", name=username), field="username")
    email = (email or "").strip() or None
    problem = email_problem(email)
    if problem:
        raise UserError(problem, field="email")
    if password is not None:
        _check_password(password, username)
    user = User(
        username=username,
        display_name=(display_name or "").strip(),
        email=email,
        is_admin=is_admin,
        password_login_allowed=password_login_allowed,
        password_hash=hash_password(password) if password is not None else None,
        password_changed_at=utcnow() if password is not None else None,
    )
    db.session.add(user)
    db.session.flush()
    audit.record("user.create", target=username, actor=actor, commit=False,
                 detail=detail or f"admin={is_admin} password={'set' if password is not None else 'none'}")
    if commit:
        db.session.commit()
    return user


def _would_remove_last_admin(user, *, is_admin, active):
    losing = user.is_admin and user.active and not (is_admin and active)
    return losing and User.active_admin_count() <= 1


def update_user(user, *, display_name=None, email=None, is_admin=None, active=None,
                password_login_allowed=None, actor=None):
    """Apply the given changes (None = unchanged). Losing admin rights or being deactivated ends the
    user's sessions at their next request."""
    new = {
        "display_name": user.display_name if display_name is None else display_name.strip(),
        "email": user.email if email is None else (email.strip() or None),
        "is_admin": user.is_admin if is_admin is None else is_admin,
        "active": user.active if active is None else active,
        "password_login_allowed": (user.password_login_allowed if password_login_allowed is None
                                   else password_login_allowed),
    }
    problem = email_problem(new["email"])
    if problem:
        raise UserError(problem, field="email")
    if _would_remove_last_admin(user, is_admin=new["is_admin"], active=new["active"]):
        raise UserError(_("%(name)s is the last active administrator; make someone else an administrator "
                          "first.", name=user.username))
    changed = sorted(name for name, value in new.items() if getattr(user, name) != value)
    if not changed:
        return []
    ends_sessions = (user.is_admin and not new["is_admin"]) or (user.active and not new["active"])
    for name in changed:
        setattr(user, name, new[name])
    if ends_sessions:
        end_user_sessions(user, commit=False)
    if "active" in changed and not user.active:  # nobody may call a provider as someone no longer here
        KeptToken.forget(user.id)
    event = "user.deactivate" if changed == ["active"] and not new["active"] else (
        "user.activate" if changed == ["active"] else "user.update")
    audit.record(event, target=user.username, actor=actor, detail="changed: " + ", ".join(changed), commit=False)
    db.session.commit()
    return changed


def set_password(user, password, *, actor=None):
    """Set a new password and end the user's existing sessions (a stolen session dies with the old password).
    The new password is the way back in, so it also lifts a lockout."""
    _check_password(password, user.username)
    user.password_hash = hash_password(password)
    user.password_changed_at = utcnow()
    end_user_sessions(user, commit=False)
    throttle.unlock(user.username)
    audit.record("user.password_set", target=user.username, actor=actor, commit=False)
    db.session.commit()


def remove_password(user, *, actor=None):
    user.password_hash = None
    user.password_changed_at = utcnow()
    end_user_sessions(user, commit=False)
    audit.record("user.password_removed", target=user.username, actor=actor, commit=False)
    db.session.commit()


def delete_user(user, *, actor=None):
    if _would_remove_last_admin(user, is_admin=False, active=False):
        raise UserError(_("%(name)s is the last active administrator and cannot be deleted.", name=user.username))
    username = user.username
    end_user_sessions(user, commit=False)  # through the sessions' own ending, so applications hear of it
    db.session.delete(user)
    audit.record("user.delete", target=username, actor=actor, commit=False)
    db.session.commit()


def count_users():
    return db.session.scalar(select(func.count()).select_from(User))
