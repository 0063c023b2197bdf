"""The contract of a plugin for an OpenID Connect server: ``ProviderContract`` plus checklist items 16-25
(the id_token, its signature and keys, userinfo, discovery) with a canned server that signs its tokens."""
import time

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from .app import JSON, Login, csrf_token_of
from .contract import ProviderContract
from .tokens import EC_KEY, ROTATED_KEY, RSA_KEY, hs256_with_public_key, tampered, unsigned


class OIDCContract(ProviderContract):
    """The contract of an OpenID Connect server, items 16-25 included. Subclasses set ``issuer`` and
    implement ``discovery_url`` and ``claims_for(account)`` (the claims the server states about a person)."""

    issuer = "https://id.example.org"
    # Claims the server sends only from userinfo, never in the id_token (item 24 applies when any).
    userinfo_only_claims: tuple = ()
    id_token_changes: dict = {}
    userinfo_changes: dict = {}
    metadata_changes: dict = {}

    def discovery_url(self):
        raise NotImplementedError

    def claims_for(self, account):
        raise NotImplementedError

    def client_id(self):
        return self.settings["client_id"]

    def metadata(self):
        base = self.issuer.rstrip("/")
        document = {"issuer": self.issuer, "authorization_endpoint": base + "/authorize",
                    "token_endpoint": base + "/token", "jwks_uri": base + "/jwks",
                    "userinfo_endpoint": base + "/userinfo", "response_types_supported": ["code"],
                    "id_token_signing_alg_values_supported": ["RS256", "ES256"],
                    "code_challenge_methods_supported": ["S256"],
                    "authorization_response_iss_parameter_supported": True}
        return {k: v for k, v in {**document, **self.metadata_changes}.items() if v is not None}

    def token_endpoint(self):
        return self.metadata()["token_endpoint"]

    def id_token(self, login, key=RSA_KEY, alg=None, header=None):
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": login.account.subject, "aud": self.client_id(), "iat": now,
                  "exp": now + 300, "nonce": login.request.get("nonce"),
                  **{k: v for k, v in self.claims_for(login.account).items() if k not in self.userinfo_only_claims}}
        claims = {k: v for k, v in {**claims, **self.id_token_changes}.items() if v is not None}
        alg = alg or ("ES256" if key is EC_KEY else "RS256")
        return jwt.encode(header or {"alg": alg, "kid": key.kid}, claims, key)

    def answer_start(self, mock):
        mock.get(self.discovery_url(), json=self.metadata(), headers=JSON)

    def answer_login(self, mock, login, id_token=None, jwks=None):
        metadata = self.metadata()
        mock.get(metadata["jwks_uri"], json=jwks or KeySet([RSA_KEY, EC_KEY]).as_dict(private=False), headers=JSON)
        login.id_token = id_token or self.id_token(login)
        mock.post(metadata["token_endpoint"], headers=JSON,
                  json={"access_token": login.access_token, "token_type": "Bearer", "expires_in": 300,
                        "refresh_token": login.refresh_token, "id_token": login.id_token})
        userinfo = {"sub": login.account.subject, **self.claims_for(login.account), **self.userinfo_changes}
        mock.get(metadata["userinfo_endpoint"], json={k: v for k, v in userinfo.items() if v is not None},
                 headers=JSON)
        return {"iss": self.issuer} if metadata.get("authorization_response_iss_parameter_supported") else {}

    def login_with(self, app, client, *, id_token=None, jwks=None, **changes):
        """One login where the server's answers differ as ``changes`` say; the audit outcome and reason."""
        self.ready(app)
        for name, value in changes.items():
            setattr(self, name, value)
        _, request = self.start(client)
        login = Login(self.account, request)
        token = id_token(login) if callable(id_token) else None
        extra = self.answer_login(self.mock, login, id_token=token, jwks=jwks)
        self.callback(client, login, extra)
        jwks_calls = sum(1 for r in self.mock.request_history if r.url == self.metadata()["jwks_uri"])
        return self.last_login(app)[:2], jwks_calls

    def test_sec_16_code_flow_with_a_valid_id_token_logs_in(self, contract_app, contract_client):
        assert self.login_with(contract_app, contract_client)[0] == ("success", None)
        assert self.logged_in(contract_client)

    def test_sec_17_id_token_from_another_issuer_is_refused(self, contract_app, contract_client):
        outcome, _ = self.login_with(contract_app, contract_client, id_token_changes={"iss": "https://evil.example"})
        assert outcome == ("failure", "provider_error")

    @pytest.mark.parametrize("changes", [{"aud": None}, {"aud": "someone-else"}, {"aud": ["x", "y"]},
                                         {"aud": "SELF+other", "azp": "other"}, {"aud": "SELF+other"}],
                             ids=["missing", "other", "others", "azp-other", "azp-missing"])
    def test_sec_18_audience_and_azp_checked(self, contract_app, contract_client, changes):
        if changes.get("aud") == "SELF+other":
            changes = {**changes, "aud": [self.client_id(), "other"]}
        outcome, _ = self.login_with(contract_app, contract_client, id_token_changes=changes)
        assert outcome == ("failure", "provider_error")

    @pytest.mark.parametrize("changes", [{"sub": None}, {"iat": None}, {"exp": -120}],
                             ids=["no-sub", "no-iat", "expired"])
    def test_sec_19_sub_iat_and_expiry_checked(self, contract_app, contract_client, changes):
        if "exp" in changes:
            changes = {"exp": int(time.time()) - 120}
        outcome, _ = self.login_with(contract_app, contract_client, id_token_changes=changes)
        assert outcome == ("failure", "provider_error")

    @pytest.mark.parametrize("nonce", [None, "another-nonce"], ids=["missing", "wrong"])
    def test_sec_20_nonce_checked(self, contract_app, contract_client, nonce):
        outcome, _ = self.login_with(contract_app, contract_client, id_token_changes={"nonce": nonce})
        assert outcome == ("failure", "provider_error")

    @pytest.mark.parametrize("forge", ["unknown-key", "hs256-public-key", "alg-none", "tampered"])
    def test_sec_21_sec_22_bad_signatures_are_refused(self, contract_app, contract_client, forge):
        def forged(login):
            if forge == "unknown-key":
                return self.id_token(login, key=RSAKey.generate_key(2048, parameters={"kid": RSA_KEY.kid}))
            if forge == "hs256-public-key":
                return hs256_with_public_key(self.id_token(login), RSA_KEY)
            if forge == "alg-none":
                return unsigned(self.id_token(login))
            return tampered(self.id_token(login), sub="someone-else")

        outcome, _ = self.login_with(contract_app, contract_client, id_token=forged)
        assert outcome == ("failure", "provider_error")
        assert not self.logged_in(contract_client)

    def test_sec_23_no_kid_with_a_single_key_is_accepted(self, contract_app, contract_client):
        outcome, _ = self.login_with(contract_app, contract_client,
                                     id_token=lambda login: self.id_token(login, header={"alg": "RS256"}),
                                     jwks=KeySet([RSA_KEY]).as_dict(private=False))
        assert outcome == ("success", None)

    def test_sec_23_unknown_kid_gets_one_refetch_then_is_refused(self, contract_app, contract_client):
        outcome, jwks_calls = self.login_with(contract_app, contract_client,
                                              id_token=lambda login: self.id_token(login, key=ROTATED_KEY))
        assert outcome == ("failure", "provider_error") and jwks_calls == 2

    def test_sec_24_userinfo_about_another_subject_is_refused(self, contract_app, contract_client):
        if not self.userinfo_only_claims:
            pytest.skip("this provider takes everything from the id_token and never calls userinfo")
        outcome, _ = self.login_with(contract_app, contract_client, userinfo_changes={"sub": "someone-else"})
        assert outcome == ("failure", "provider_error")

    def test_sec_25_discovery_for_another_issuer_is_refused(self, contract_app, contract_client):
        self.ready(contract_app)
        self.metadata_changes = {"issuer": "https://evil.example"}
        self.mock.get(self.discovery_url(), json=self.metadata(), headers=JSON)
        response = contract_client.post("/auth/start", data={"csrf_token": csrf_token_of(contract_client.get("/login")),
                                                             "provider": "contract"})
        assert response.headers["Location"].endswith("/login")
        assert self.last_login(contract_app)[:2] == ("failure", "provider_error")

    @pytest.mark.parametrize("iss", ["https://evil.example", None], ids=["other", "missing"])
    def test_sec_04_iss_in_the_authorization_response_checked(self, contract_app, contract_client, iss):
        self.ready(contract_app)
        _, request = self.start(contract_client)
        login = Login(self.account, request)
        self.answer_login(self.mock, login)
        self.callback(contract_client, login, {"iss": iss})
        assert self.last_login(contract_app)[:2] == ("failure", "provider_error")
