"""First-run setup: no default account exists; a one-time link creates the first administrator."""
import secrets
from datetime import timedelta

from flask import current_app
from sqlalchemy import delete, select

from ..encryption import digest
from ..extensions import db
from ..models import SetupToken, User, utcnow


def admin_exists():
    return db.session.scalar(select(User.id).where(User.is_admin).limit(1)) is not None


def admin_known_to_exist():
    """``admin_exists()`` for the login page's "no administrator yet" notice, without a query once an
    administrator has been seen: the last active administrator cannot be demoted, deactivated or deleted,
    so once one exists one always does. Only True is remembered (per app, so per process); the setup
    pages keep asking the database."""
    extensions = current_app.extensions
    if extensions.get("geologin.admin_exists"):
        return True
    exists = admin_exists()
    if exists:
        extensions["geologin.admin_exists"] = True
    return exists


def issue_setup_token():
    """Create a fresh setup token (older links stop working) or return None when an admin exists."""
    if admin_exists():
        return None
    token = secrets.token_urlsafe(32)
    hours = current_app.config["SETUP_TOKEN_HOURS"]
    db.session.execute(delete(SetupToken))
    db.session.add(SetupToken(token_hash=digest(token), expires_at=utcnow() + timedelta(hours=hours)))
    db.session.commit()
    return token


def setup_token_valid(token):
    if not token or len(token) > 200 or admin_exists():
        return False
    row = db.session.scalar(select(SetupToken).where(SetupToken.token_hash == digest(token)))
    return row is not None and row.expires_at > utcnow()


def retire_setup_tokens():
    db.session.execute(delete(SetupToken))
