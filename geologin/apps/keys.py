"""The OpenID provider's signing keys, made and used with joserfc and kept in the database (the private
JWK encrypted with ENCRYPTION_KEY), so every node signs with the same keys and publishes the same key set.

Keys of one algorithm follow each other: a key is published from its creation, signs from ``signs_from``
until a newer key of its algorithm starts signing (it is then *replaced*), and stays published until every
token it signed has expired. Nothing here is cached per process: a key rotated through one node is in every
node's key set at the next request."""
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from joserfc.jwk import ECKey, RSAKey, import_key
from sqlalchemy import delete, select

from .. import audit
from ..encryption import encrypt, decrypt, reencrypt
from ..extensions import db
from ..models import SigningKey, utcnow

ALGORITHMS = ("RS256", "ES256")
DEFAULT_ALG = "RS256"  # what a relying party expects unless it registered another (OpenID Connect Registration)
# A relying party accepts a token a little after its exp (its clock may lag ours): its key stays that much longer.
CLOCK_LEEWAY = timedelta(minutes=5)
# The settings giving the lifetime of each kind of token these keys sign: a replaced key stays published for
# the longest. A new kind of signed token (JWT access tokens, logout tokens...) adds its setting here.
SIGNED_TOKEN_LIFETIMES = ("OIDC_ID_TOKEN_SECONDS",)
MAX_GRACE_SECONDS = 30 * 24 * 3600

NEXT, SIGNING, RETIRING, EXPIRED = "next", "signing", "retiring", "expired"


class SigningKeyError(ValueError):
    """A rotation asked for something geologin does not do (an unknown algorithm, a negative grace)."""


@dataclass(frozen=True)
class KeyState:
    """Where one key stands: ``replaced_at`` is when a newer key of its algorithm starts (or started)
    signing, ``leaves_at`` when it leaves the key set (both None while nothing replaces it)."""
    kid: str
    alg: str
    state: str
    created_at: datetime
    signs_from: datetime
    replaced_at: datetime | None
    leaves_at: datetime | None

    def as_dict(self):
        def iso(moment):
            return None if moment is None else moment.isoformat()
        return {"kid": self.kid, "alg": self.alg, "state": self.state, "created_at": iso(self.created_at),
                "signs_from": iso(self.signs_from), "replaced_at": iso(self.replaced_at),
                "leaves_at": iso(self.leaves_at)}


def token_lifetime():
    """How long a replaced key must stay published: the longest-lived token it may have signed, plus leeway."""
    return timedelta(seconds=max(current_app.config[name] for name in SIGNED_TOKEN_LIFETIMES)) + CLOCK_LEEWAY


def _states(rows, now):
    """(row, KeyState) for every row, oldest first."""
    lifetime = token_lifetime()
    rows = sorted(rows, key=lambda row: row.id)
    found = []
    for position, row in enumerate(rows):
        newer = [other.signs_from for other in rows[position + 1:] if other.alg == row.alg]
        replaced_at = min(newer) if newer else None
        leaves_at = None
        if replaced_at is not None:
            # A key overtaken before it ever signed signed nothing: nothing to keep it published for.
            leaves_at = replaced_at if replaced_at < row.signs_from else replaced_at + lifetime
        if leaves_at is not None and leaves_at <= now:
            state = EXPIRED
        elif replaced_at is not None and replaced_at <= now:
            state = RETIRING
        elif row.signs_from > now:
            state = NEXT
        else:
            state = SIGNING
        found.append((row, KeyState(row.kid, row.alg, state, row.created_at, row.signs_from, replaced_at,
                                    leaves_at)))
    return found


def _all_rows():
    return db.session.scalars(select(SigningKey).order_by(SigningKey.id)).all()


def key_states():
    """Every stored key with its state (next, signing, retiring, expired), oldest first."""
    return [state for _, state in _states(_all_rows(), utcnow())]


def public_key_set():
    """The JWKS: every key that signs now, every next key, and every replaced key whose tokens may still
    be valid. Public parts only."""
    return {"keys": [json.loads(row.public_jwk) for row, state in _states(_all_rows(), utcnow())
                     if state.state != EXPIRED]}


def _checked_alg(alg):
    if alg not in ALGORITHMS:
        raise SigningKeyError(f"Unknown signing algorithm {alg!r}: use one of {', '.join(ALGORITHMS)}.")
    return alg


def _new_row(alg, signs_from, now):
    parameters = {"kid": secrets.token_urlsafe(16), "alg": alg, "use": "sig"}
    if alg == "RS256":
        key = RSAKey.generate_key(2048, parameters=parameters)
    else:
        key = ECKey.generate_key("P-256", parameters=parameters)
    row = SigningKey(kid=key.kid, alg=alg, private_jwk=encrypt(json.dumps(key.as_dict(private=True))),
                     public_jwk=json.dumps(key.as_dict(private=False), sort_keys=True), created_at=now,
                     signs_from=signs_from)
    db.session.add(row)
    db.session.flush()
    return row


def _current_row(alg, now):
    return db.session.scalar(select(SigningKey).where(SigningKey.alg == alg, SigningKey.signs_from <= now)
                             .order_by(SigningKey.id.desc()).limit(1))


def signing_key(alg=DEFAULT_ALG):
    """The joserfc key to sign with now (its ``kid`` and ``alg`` set): the newest key of ``alg`` whose
    ``signs_from`` has passed. With none (a fresh install), one is made that signs at once and committed
    before it is used, so no token is ever signed by a key that is not published."""
    _checked_alg(alg)
    now = utcnow()
    row = _current_row(alg, now)
    if row is None:
        row = _new_row(alg, now, now)
        audit.record("key.create", target=row.kid, detail=f"first {alg} key, made when first needed")
    return import_key(json.loads(decrypt(row.private_jwk)))


def rotate(alg=DEFAULT_ALG, grace=None, actor=None):
    """Publish a new key of ``alg`` now; it signs after ``grace`` seconds (default OIDC_KEY_GRACE_SECONDS),
    so relying parties that cache the key set fetch it before they meet a token it signed. The first key of
    an algorithm signs at once (no key of it signs yet). Expired keys are deleted. Returns the new KeyState."""
    _checked_alg(alg)
    grace = current_app.config["OIDC_KEY_GRACE_SECONDS"] if grace is None else grace
    if not 0 <= grace <= MAX_GRACE_SECONDS:
        raise SigningKeyError(f"The grace period must be between 0 and {MAX_GRACE_SECONDS} seconds.")
    now = utcnow()
    states = _states(_all_rows(), now)
    expired = [row.id for row, state in states if state.state == EXPIRED]
    if expired:
        db.session.execute(delete(SigningKey).where(SigningKey.id.in_(expired)))
    signs_now = any(state.alg == alg and state.state == SIGNING for _, state in states)
    row = _new_row(alg, now + timedelta(seconds=grace) if signs_now else now, now)
    audit.record("key.rotate", target=row.kid, actor=actor,
                 detail=f"{alg}; signs from {row.signs_from.isoformat()}; {len(expired)} expired key(s) deleted")
    return next(state for other, state in _states(_all_rows(), now) if other.id == row.id)


def reencrypt_private_keys():
    """Re-encrypt every private key under the first ENCRYPTION_KEY (``providers rotate-keys``); the caller
    commits, together with the other secrets. Returns how many."""
    rows = _all_rows()
    for row in rows:
        row.private_jwk = reencrypt(row.private_jwk)
    return len(rows)
