"""The OpenID provider's signing keys (geologin/apps/keys.py, ``keys list/rotate``): a token signed now
validates against the published key set, a rotated-in key is published before it signs, an old key stays
published until the tokens it signed have expired, private keys stay encrypted and out of every output, and
every node sees the same keys. Time is shifted by replacing the clock the service reads."""
import json
import logging
from datetime import datetime, timedelta, timezone

import pytest
from cryptography.fernet import Fernet
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, RSAKey
from joserfc.jwt import JWTClaimsRegistry
from sqlalchemy import select, text

from geologin.apps import keys
from geologin.encryption import SecretUnreadable, decrypt
from geologin.extensions import db
from geologin.models import AuditEvent, SigningKey
from tests.conftest import TEST_ENCRYPTION_KEY

GRACE = 3600
ID_TOKEN_SECONDS = 300


class Clock:
    def __init__(self):
        self.now = datetime.now(timezone.utc).replace(microsecond=0)

    def shift(self, **delta):
        self.now += timedelta(**delta)

    def timestamp(self):
        return int(self.now.timestamp())


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(keys, "utcnow", lambda: clock.now)
    return clock


@pytest.fixture
def app(app_factory):
    return app_factory(OIDC_KEY_GRACE_SECONDS=GRACE, OIDC_ID_TOKEN_SECONDS=ID_TOKEN_SECONDS)


def _sign(app, clock, alg="RS256"):
    """An ID-token-like JWT signed now with the key geologin signs with; (token, kid)."""
    with app.app_context():
        key = keys.signing_key(alg)
        issued = clock.timestamp()
        claims = {"iss": "http://localhost", "sub": "u-1", "aud": "app", "iat": issued,
                  "exp": issued + ID_TOKEN_SECONDS}
        return jwt.encode({"alg": key.alg, "kid": key.kid}, claims, key), key.kid


def _key_set(app):
    """The key set as a relying party receives it: JSON."""
    with app.app_context():
        return json.loads(json.dumps(keys.public_key_set()))


def _kids(app):
    return [jwk["kid"] for jwk in _key_set(app)["keys"]]


def _validates(token, key_set, clock):
    """What a relying party checks: the signature with the published key named by the kid, and expiry
    (with no leeway of its own)."""
    try:
        decoded = jwt.decode(token, KeySet.import_key_set(key_set), algorithms=list(keys.ALGORITHMS))
        JWTClaimsRegistry(now=clock.timestamp(), exp={"essential": True}).validate(decoded.claims)
    except JoseError:
        return False
    return True


def _states(app):
    with app.app_context():
        return {state.kid: state for state in keys.key_states()}


def _rotate(app, **options):
    with app.app_context():
        return keys.rotate(**options)


def test_fresh_install_signs_with_one_rs256_key_that_the_key_set_publishes(app, clock):
    assert _kids(app) == []
    token, kid = _sign(app, clock)
    assert _kids(app) == [kid]
    assert _validates(token, _key_set(app), clock)
    assert {k: (s.alg, s.state) for k, s in _states(app).items()} == {kid: ("RS256", keys.SIGNING)}
    assert _sign(app, clock)[1] == kid  # made once, not at every signature
    published = _key_set(app)["keys"][0]
    assert published["kty"] == "RSA" and published["alg"] == "RS256" and published["use"] == "sig"
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(published)


def test_a_forged_or_foreign_token_does_not_validate(app, clock):
    token, _ = _sign(app, clock)
    header, payload, signature = token.split(".")
    forged = ".".join([header, payload, signature[:-4] + ("AAAA" if signature[-4:] != "AAAA" else "BBBB")])
    assert not _validates(forged, _key_set(app), clock)
    other = RSAKey.generate_key(2048, parameters={"kid": "stranger", "alg": "RS256"})
    foreign = jwt.encode({"alg": "RS256", "kid": "stranger"}, {"exp": clock.timestamp() + 60}, other)
    assert not _validates(foreign, _key_set(app), clock)


def test_sec_63_next_key_is_published_before_it_signs(app, clock):
    _, old = _sign(app, clock)
    new = _rotate(app).kid
    assert _kids(app) == [old, new]  # published at once...
    assert _states(app)[new].state == keys.NEXT
    clock.shift(seconds=GRACE - 1)
    assert _sign(app, clock)[1] == old  # ...but not signing during the grace period
    clock.shift(seconds=1)
    token, kid = _sign(app, clock)
    assert kid == new
    assert _validates(token, _key_set(app), clock)
    assert (_states(app)[old].state, _states(app)[new].state) == (keys.RETIRING, keys.SIGNING)


def test_oidcc_server_rotate_keys(app, clock):
    """A token signed by the old key just before the new one takes over validates until it expires; the
    old key leaves the key set once every token it signed has expired (plus the relying parties' leeway)."""
    new = _rotate(app).kid  # the first RS256 key: signs at once
    assert _states(app)[new].state == keys.SIGNING
    old = new
    new = _rotate(app).kid
    clock.shift(seconds=GRACE - 1)
    last_by_old, kid = _sign(app, clock)
    assert kid == old
    clock.shift(seconds=1)
    assert _sign(app, clock)[1] == new
    replaced = _states(app)[old]
    assert replaced.state == keys.RETIRING and replaced.replaced_at == clock.now
    assert replaced.leaves_at == clock.now + timedelta(seconds=ID_TOKEN_SECONDS) + keys.CLOCK_LEEWAY
    clock.shift(seconds=ID_TOKEN_SECONDS - 2)
    assert _validates(last_by_old, _key_set(app), clock)  # still valid, still verifiable
    clock.shift(seconds=2)
    assert not _validates(last_by_old, _key_set(app), clock)  # expired now
    assert old in _kids(app)  # kept for the relying parties' clock leeway
    clock.now = replaced.leaves_at
    assert _kids(app) == [new]
    assert _states(app)[old].state == keys.EXPIRED
    newest = _rotate(app).kid
    assert set(_states(app)) == {new, newest}  # the rotation deleted the expired key


def test_a_key_replaced_before_it_signed_leaves_with_its_replacement(app, clock):
    """An emergency rotation with no grace overtakes a scheduled key: the scheduled one never signs."""
    first = _rotate(app).kid
    scheduled = _rotate(app).kid
    emergency = _rotate(app, grace=0).kid
    assert _sign(app, clock)[1] == emergency
    assert _kids(app) == [first, emergency]
    clock.shift(seconds=GRACE + 1)
    assert _sign(app, clock)[1] == emergency
    assert _states(app)[scheduled].state == keys.EXPIRED


def test_es256_keys_sign_beside_the_rs256_ones(app, clock):
    rs_token, rs_kid = _sign(app, clock)
    es = _rotate(app, alg="ES256")  # no ES256 key signs yet: nothing to wait for
    assert es.state == keys.SIGNING and es.signs_from == clock.now
    es_token, es_kid = _sign(app, clock, "ES256")
    assert es_kid == es.kid and jwt.decode(es_token, KeySet.import_key_set(_key_set(app))).header["alg"] == "ES256"
    published = {jwk["kid"]: jwk for jwk in _key_set(app)["keys"]}
    assert published[es_kid]["kty"] == "EC" and published[es_kid]["crv"] == "P-256" and "d" not in published[es_kid]
    assert _validates(es_token, _key_set(app), clock) and _validates(rs_token, _key_set(app), clock)
    assert _sign(app, clock)[1] == rs_kid  # rotating ES256 leaves the RS256 chain alone
    next_es = _rotate(app, alg="ES256").kid
    assert _sign(app, clock, "ES256")[1] == es_kid
    clock.shift(seconds=GRACE)
    assert _sign(app, clock, "ES256")[1] == next_es


def test_private_keys_are_stored_encrypted_and_never_printed_or_audited(app, clock, caplog):
    caplog.set_level(logging.DEBUG)
    runner = app.test_cli_runner()
    outputs = [runner.invoke(args=["keys", "rotate", "--alg", alg, *extra]).output
               for alg in ("RS256", "ES256") for extra in ([], ["--json"])]
    outputs += [runner.invoke(args=["keys", "list", *extra]).output for extra in ([], ["--json"])]
    outputs.append(runner.invoke(args=["audit", "list", "--json"]).output)
    with app.app_context():
        private_parts = []
        for row in db.session.scalars(select(SigningKey)):
            private = json.loads(decrypt(row.private_jwk))
            private_parts += [private[name] for name in ("d", "p", "q", "dp", "dq", "qi") if name in private]
        assert len(private_parts) == 6 + 6 + 1 + 1
        stored = db.session.execute(text("SELECT * FROM signing_keys")).all()
        audit_rows = [event.as_dict() for event in db.session.scalars(select(AuditEvent))]
    assert len(stored) == 4
    where = {"row": json.dumps([list(map(str, row)) for row in stored]), "audit": json.dumps(audit_rows),
             "log": caplog.text, **{f"output {n}": output for n, output in enumerate(outputs)}}
    for part in private_parts:
        assert [name for name, value in where.items() if part in value] == []


def test_keys_cli_rotate_and_list(app, clock):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["keys", "rotate"])
    assert first.exit_code == 0, first.output
    assert "signs now" in first.output
    result = runner.invoke(args=["keys", "rotate", "--grace", "60", "--json"])
    assert result.exit_code == 0, result.output
    made = json.loads(result.output)
    assert made["alg"] == "RS256"
    assert datetime.fromisoformat(made["signs_from"]) == clock.now + timedelta(seconds=60)
    listed = json.loads(runner.invoke(args=["keys", "list", "--json"]).output)
    assert [(k["alg"], k["state"]) for k in listed] == [("RS256", "signing"), ("RS256", "next")]
    assert listed[1]["kid"] == made["kid"]
    assert listed[0]["leaves_at"] == (clock.now + timedelta(seconds=60 + ID_TOKEN_SECONDS)
                                      + keys.CLOCK_LEEWAY).isoformat()
    text_lines = runner.invoke(args=["keys", "list"]).output.splitlines()
    assert text_lines[1].startswith(f"{made['kid']} RS256 next ") and "leaves_key_set=-" in text_lines[1]
    with app.app_context():
        events = db.session.scalars(select(AuditEvent).where(AuditEvent.event_type == "key.rotate")
                                    .order_by(AuditEvent.id)).all()
        assert [(e.actor, e.target) for e in events][-1] == ("cli", made["kid"])


@pytest.mark.parametrize("args", [["--alg", "HS256"], ["--alg", "none"], ["--grace", "-1"],
                                  ["--grace", "999999999999"], ["--grace", "soon"]])
def test_keys_rotate_refuses_bad_input_and_changes_nothing(app, clock, args):
    result = app.test_cli_runner().invoke(args=["keys", "rotate", *args])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert _states(app) == {}
    with app.app_context():
        with pytest.raises(keys.SigningKeyError):
            keys.rotate("HS256")
        with pytest.raises(keys.SigningKeyError):
            keys.rotate(grace=-1)
        with pytest.raises(keys.SigningKeyError):
            keys.signing_key("none")
    assert _states(app) == {}


def test_a_key_rotated_through_node_a_is_in_node_b_key_set_at_once(app_factory, clock):
    node_a = app_factory(OIDC_KEY_GRACE_SECONDS=GRACE)
    node_b = app_factory(OIDC_KEY_GRACE_SECONDS=GRACE)
    token, first = _sign(node_b, clock)
    assert _kids(node_a) == [first]
    result = node_a.test_cli_runner().invoke(args=["keys", "rotate", "--json"])
    new = json.loads(result.output)["kid"]
    assert _kids(node_b) == [first, new]
    assert _validates(token, _key_set(node_b), clock)
    clock.shift(seconds=GRACE)
    assert _sign(node_b, clock)[1] == new == _sign(node_a, clock)[1]


def test_providers_rotate_keys_reencrypts_the_private_signing_keys(app_factory, clock):
    new_key = Fernet.generate_key().decode()
    old_only = app_factory()
    _, kid = _sign(old_only, clock)
    _sign(old_only, clock, "ES256")
    new_only = app_factory(ENCRYPTION_KEY=new_key)
    with new_only.app_context(), pytest.raises(SecretUnreadable):
        keys.signing_key()
    both = app_factory(ENCRYPTION_KEY=f"{new_key},{TEST_ENCRYPTION_KEY}")
    result = both.test_cli_runner().invoke(args=["providers", "rotate-keys"])
    assert result.exit_code == 0, result.output
    assert "0 secret(s) of identity providers, 2 private signing key(s)" in result.output
    token, signed_by = _sign(new_only, clock)
    assert signed_by == kid and _validates(token, _key_set(new_only), clock)
    with old_only.app_context(), pytest.raises(SecretUnreadable):
        keys.signing_key()


def test_providers_rotate_keys_changes_nothing_when_a_signing_key_is_unreadable(app_factory, clock):
    old_only = app_factory()
    _sign(old_only, clock)
    with old_only.app_context():
        before = db.session.scalar(select(SigningKey.private_jwk))
    result = app_factory(ENCRYPTION_KEY=Fernet.generate_key().decode()).test_cli_runner().invoke(
        args=["providers", "rotate-keys"])
    assert result.exit_code == 1 and "nothing was changed" in result.output
    with old_only.app_context():
        assert db.session.scalar(select(SigningKey.private_jwk)) == before
