"""Encryption at rest for provider secrets (Fernet). Several keys may be configured: the first encrypts,
all decrypt, so keys can be rotated without downtime."""
import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app

from .config import ConfigError, is_development, read_or_create_instance_secret


# 32 random bytes hold about 30 distinct values; fewer than 16 happens by chance far less than once in 2**100.
MIN_DISTINCT_KEY_BYTES = 16


class SecretUnreadable(RuntimeError):
    """A stored secret cannot be decrypted with any configured key."""


def _parse_keys(value):
    if isinstance(value, (list, tuple)):
        return [str(k).strip() for k in value if str(k).strip()]
    return [k.strip() for k in str(value or "").split(",") if k.strip()]


def init_app(app):
    """Check the keys at start-up so a bad key is a clear error, not a failed login later."""
    keys = _parse_keys(app.config.get("ENCRYPTION_KEY"))
    if not keys and is_development(app):
        keys = [read_or_create_instance_secret(app, "encryption_key", Fernet.generate_key().decode)]
    if not keys:
        raise ConfigError(
            "ENCRYPTION_KEY is not set. Set GEOLOGIN_ENCRYPTION_KEY to a Fernet key, made with "
            "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`. "
            "To rotate, put the new key first and keep the old ones after it, comma-separated.")
    try:
        fernets = [Fernet(k) for k in keys]
    except ValueError:
        raise ConfigError("ENCRYPTION_KEY must be 32 url-safe base64-encoded bytes (a Fernet key).") from None
    for position, key in enumerate(keys, 1):
        if len(set(base64.urlsafe_b64decode(key))) < MIN_DISTINCT_KEY_BYTES:
            raise ConfigError(
                f"ENCRYPTION_KEY number {position} is not random (its 32 bytes repeat a few values, like an "
                "all-zero key). Make one with "
                "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`.")
    app.extensions["geologin.encryption"] = MultiFernet(fernets)


def _fernet():
    return current_app.extensions["geologin.encryption"]


def encrypt(plaintext):
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(token):
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable("a stored secret cannot be decrypted with the configured ENCRYPTION_KEY") from None


def reencrypt(token):
    """The same secret under the primary key (for key rotation)."""
    try:
        return _fernet().rotate(token.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable("a stored secret cannot be decrypted with the configured ENCRYPTION_KEY") from None


def digest(token):
    """What the database keeps of a bearer secret (a session token, a login state, a setup link): its
    SHA-256, so a copy of the database cannot be replayed."""
    return hashlib.sha256(token.encode()).hexdigest()
