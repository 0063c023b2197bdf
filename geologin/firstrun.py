"""First-run setup: no default account exists; a one-time link creates the first administrator."""
import hashlib
import secrets
from datetime import timedelta

from flask import current_app
from sqlalchemy import delete, select

from .extensions import db
from .models import SetupToken, User, utcnow


def _digest(token):
    return hashlib.sha256(token.encode()).hexdigest()


def admin_exists():
    return db.session.scalar(select(User.id).where(User.is_admin).limit(1)) is not None


def issue_setup_token():
    """Create a fresh setup token (older links stop working) or return None when an admin exists."""
    if admin_exists():
        return None
    token = secrets.token_urlsafe(32)
    hours = int(current_app.config["SETUP_TOKEN_HOURS"])
    db.session.execute(delete(SetupToken))
    db.session.add(SetupToken(token_hash=_digest(token), expires_at=utcnow() + timedelta(hours=hours)))
    db.session.commit()
    return token


def setup_token_valid(token):
    if not token or len(token) > 200 or admin_exists():
        return False
    row = db.session.scalar(select(SetupToken).where(SetupToken.token_hash == _digest(token)))
    return row is not None and row.expires_at > utcnow()


def retire_setup_tokens():
    db.session.execute(delete(SetupToken))
