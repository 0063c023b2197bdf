"""The shared OAuth 2 / OpenID Connect base every plugin builds on (checklist items 16-25), one call
at a time: a local test issuer signs id_tokens and requests-mock answers the single HTTP call involved.
The end-to-end versions run against the fake DHIS2 2.42 (tests/test_dhis2_login.py)."""
import base64
import hashlib
import hmac
import json
import time

import pytest
import requests_mock
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, RSAKey

from geologin.providers import (CallbackContext, HttpClient, Identity, InstanceView, OAuth2Provider, ProviderError,
                                Tokens)

ISSUER = "https://id.example.org/"
CLIENT = "geologin"
NONCE = "n-0S6_WzA2Mj"
RSA = RSAKey.generate_key(2048, parameters={"kid": "rsa-1", "use": "sig"})
EC = ECKey.generate_key("P-256", parameters={"kid": "ec-1", "use": "sig"})
METADATA = {"issuer": ISSUER, "authorization_endpoint": ISSUER + "authorize", "token_endpoint": ISSUER + "token",
            "jwks_uri": ISSUER + "jwks", "userinfo_endpoint": ISSUER + "userinfo",
            "id_token_signing_alg_values_supported": ["RS256", "ES256"]}


class TestProvider(OAuth2Provider):
    """The smallest OIDC plugin: discovery at the issuer, identity from the id_token."""

    __test__ = False
    type = "testoidc"

    def discovery_url(self):
        return ISSUER + ".well-known/openid-configuration"

    def expected_issuers(self):
        return (ISSUER,)

    def endpoints(self):
        return self.metadata()

    def scopes(self):
        return ["openid"]

    def identity_from(self, tokens, claims):
        return Identity(subject=claims["sub"], username=claims.get("preferred_username", claims["sub"]))


@pytest.fixture
def provider(app):
    with app.test_request_context():
        view = InstanceView(slug="t", label="T", settings={"client_id": CLIENT}, secret_reader=lambda name: "s3cret")
        yield TestProvider(view, http=HttpClient({"id.example.org"}), default_redirect_uri="https://rp/cb")


def claims(**changes):
    now = int(time.time())
    base = {"iss": ISSUER, "sub": "u-123", "aud": [CLIENT], "azp": CLIENT, "iat": now, "exp": now + 300,
            "nonce": NONCE, "preferred_username": "amina"}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def sign(payload, key=RSA, alg="RS256", header=None):
    return jwt.encode(header or {"alg": alg, "kid": key.kid}, payload, key)


def keys(*published):
    return KeySet(list(published or [RSA, EC])).as_dict(private=False)


JSON = {"Content-Type": "application/json"}


def run(provider, id_token, *, jwks=None, metadata=METADATA, params=None):
    """One login's callback: discovery, token exchange, JWKS, each answered once."""
    with requests_mock.Mocker() as mock:
        mock.get(ISSUER + ".well-known/openid-configuration", json=metadata, headers=JSON)
        mock.post(ISSUER + "token", json={"access_token": "at", "token_type": "Bearer", "expires_in": 300,
                                          "id_token": id_token}, headers=JSON)
        jwks_calls = mock.get(ISSUER + "jwks", json=jwks or keys(), headers=JSON)
        callback = CallbackContext(params=params or {"code": "c0de", "state": "s"}, redirect_uri="https://rp/cb",
                                   nonce=NONCE, code_verifier="v" * 43)
        try:
            return provider.complete_login(callback), jwks_calls.call_count
        except ProviderError as error:
            return error, jwks_calls.call_count


def test_sec_16_code_flow_happy_path(provider):
    identity, _ = run(provider, sign(claims()))
    assert identity == Identity(subject="u-123", username="amina", tokens=Tokens("at", expires_in=300))


def test_sec_17_issuer_mismatch_rejected(provider):
    error, _ = run(provider, sign(claims(iss="https://other.example.org/")))
    assert isinstance(error, ProviderError) and "iss" in error.detail


@pytest.mark.parametrize("changes", [{"aud": None}, {"aud": ["someone-else"]}, {"aud": "someone-else"},
                                     {"aud": [CLIENT, "other"], "azp": "other"},
                                     {"aud": [CLIENT, "other"], "azp": None}])
def test_sec_18_audience_and_azp_checked(provider, changes):
    error, _ = run(provider, sign(claims(**changes)))
    assert isinstance(error, ProviderError)


def test_sec_18_several_audiences_with_our_azp_accepted(provider):
    identity, _ = run(provider, sign(claims(aud=[CLIENT, "other"], azp=CLIENT)))
    assert identity.subject == "u-123"


@pytest.mark.parametrize("changes", [{"sub": None}, {"iat": None}, {"exp": int(time.time()) - 120}])
def test_sec_19_missing_sub_or_iat_or_expired_rejected(provider, changes):
    error, _ = run(provider, sign(claims(**changes)))
    assert isinstance(error, ProviderError)


def test_sec_19_sec_51_expiry_within_leeway_accepted(provider):
    identity, _ = run(provider, sign(claims(exp=int(time.time()) - 30, iat=int(time.time()) + 30)))
    assert identity.subject == "u-123"


@pytest.mark.parametrize("changes", [{"nonce": "replayed"}, {"nonce": None}])
def test_sec_20_nonce_checked(provider, changes):
    error, _ = run(provider, sign(claims(**changes)))
    assert isinstance(error, ProviderError)


def _tamper(token):
    head, body, sig = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4)))
    raw[0] ^= 1
    return ".".join([head, body, base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()])


def _hs256_with_public_key(payload):
    signing_input = f"{_b64({'alg': 'HS256', 'kid': 'rsa-1'})}.{_b64(payload)}"
    mac = hmac.new(RSA.as_pem(private=False), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def _b64(data):
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


@pytest.mark.parametrize("make", [
    lambda: _tamper(sign(claims())),  # RS256, one bit flipped
    lambda: _tamper(sign(claims(), EC, "ES256")),  # ES256, one bit flipped
    lambda: sign(claims(), RSAKey.generate_key(2048, parameters={"kid": "rsa-1"})),  # another key, same kid
    # HS256 "signed" with the server's public key as the HMAC secret (CVE-2024-37568 style)
    lambda: _hs256_with_public_key(claims()),
], ids=["rs256-tampered", "es256-tampered", "wrong-key", "hs256-public-key"])
def test_sec_21_bad_signatures_rejected(provider, make):
    error, _ = run(provider, make())
    assert isinstance(error, ProviderError)


def test_sec_21_es256_accepted(provider):
    identity, _ = run(provider, sign(claims(), EC, "ES256"))
    assert identity.subject == "u-123"


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_sec_22_unsigned_id_tokens_rejected(provider, alg):
    error, _ = run(provider, f"{_b64({'alg': alg})}.{_b64(claims())}.")
    assert isinstance(error, ProviderError)


def test_sec_23_absent_kid_with_a_single_key_accepted(provider):
    token = sign(claims(), header={"alg": "RS256"})
    identity, _ = run(provider, token, jwks=keys(RSA))
    assert identity.subject == "u-123"


def test_sec_23_unknown_kid_refetches_once_then_rejects_without_crashing(provider):
    stranger = RSAKey.generate_key(2048, parameters={"kid": "rotated"})
    error, calls = run(provider, sign(claims(), stranger))
    assert isinstance(error, ProviderError) and calls == 2  # the first fetch and one refetch
    error, calls = run(provider, sign(claims(), stranger))
    assert isinstance(error, ProviderError) and calls == 0  # rate-limited: no refetch storm


def test_sec_23_rotated_key_is_found_by_the_refetch(provider):
    run(provider, sign(claims()))  # caches the key set {rsa-1, ec-1}
    rotated = RSAKey.generate_key(2048, parameters={"kid": "rsa-2"})
    identity, calls = run(provider, sign(claims(), rotated), jwks=keys(rotated))
    assert identity.subject == "u-123" and calls == 1


def test_sec_24_userinfo_sub_must_match_the_id_token(provider):
    with requests_mock.Mocker() as mock:
        mock.get(ISSUER + ".well-known/openid-configuration", json=METADATA, headers=JSON)
        mock.get(ISSUER + "userinfo", json={"sub": "someone-else", "preferred_username": "mallory"}, headers=JSON)
        with pytest.raises(ProviderError, match="userinfo sub"):
            provider.userinfo("at", {"sub": "u-123"})
        mock.get(ISSUER + "userinfo", json={"sub": "u-123", "email": "a@example.org"}, headers=JSON)
        assert provider.userinfo("at", {"sub": "u-123"})["email"] == "a@example.org"


@pytest.mark.parametrize("issuer", ["https://id.example.org", "https://evil.example.org/", None])
def test_sec_25_discovery_issuer_must_be_exactly_the_configured_one(provider, issuer):
    error, _ = run(provider, sign(claims()), metadata={**METADATA, "issuer": issuer})
    assert isinstance(error, ProviderError) and "discovery issuer" in error.detail


def test_sec_04_iss_parameter_checked_and_required_when_promised(provider):
    error, _ = run(provider, sign(claims()), params={"code": "c", "iss": "https://evil.example.org/"})
    assert isinstance(error, ProviderError) and "mix-up" in error.detail
    promised = {**METADATA, "authorization_response_iss_parameter_supported": True}
    provider.cache.clear()  # a new discovery document
    error, _ = run(provider, sign(claims()), metadata=promised, params={"code": "c"})
    assert isinstance(error, ProviderError) and "lacks the iss" in error.detail
    provider.cache.clear()
    identity, _ = run(provider, sign(claims()), metadata=promised, params={"code": "c", "iss": ISSUER})
    assert identity.subject == "u-123"
