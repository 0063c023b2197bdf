"""The plugin author's test kit. Mix :class:`ProviderContract` (or :class:`OIDCContract` for an OpenID
Connect server) into a pytest class, give it the plugin's settings and canned server answers, and it runs
the whole login through geologin: the happy path, every failure reason code, and the security checklist
items that hold for every plugin. Needs the ``test`` extras (pytest, requests-mock). See docs/plugins.md.
"""
import base64
import hashlib
import hmac
import json
import logging
import secrets
import time
from dataclasses import dataclass, field, replace
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
import requests_mock
from cryptography.fernet import Fernet
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, RSAKey

JSON = {"Content-Type": "application/json"}
# Keys are made once per process: every OIDC contract signs with them, whatever test comes first.
RSA_KEY = RSAKey.generate_key(2048, parameters={"kid": "contract-rsa", "use": "sig"})
EC_KEY = ECKey.generate_key("P-256", parameters={"kid": "contract-ec", "use": "sig"})
ROTATED_KEY = RSAKey.generate_key(2048, parameters={"kid": "contract-rotated", "use": "sig"})


@dataclass(frozen=True)
class Account:
    """A person's account at the identity server."""

    username: str = "alice"
    subject: str = "subject-of-alice-0001"
    email: str | None = "alice@example.org"
    name: str | None = "Alice Example"


@dataclass
class Login:
    """One login as the server sees it: who signs in, geologin's authorization request (its query
    parameters), and what the server hands out for it."""

    account: Account
    request: dict
    code: str = field(default_factory=lambda: "code-" + secrets.token_urlsafe(16))
    access_token: str = field(default_factory=lambda: "at-" + secrets.token_urlsafe(24))


class ProviderContract:
    """The contract every provider plugin passes. Subclasses set ``provider_type``, ``settings`` and
    ``secrets`` and implement ``answer_login`` and ``token_endpoint``."""

    provider_type = ""
    settings: dict = {}
    secrets: dict = {}
    public_url = "https://login.example.org"
    account = Account()

    # -- what a plugin's test supplies ----------------------------------------------------------------
    def answer_start(self, mock):
        """Register on ``mock`` what the server answers before anyone signs in (e.g. discovery)."""

    def answer_login(self, mock, login):
        """Register on ``mock`` (a requests_mock.Mocker) every answer the server gives while ``login``
        completes successfully. Return extra callback parameters (such as ``iss``) or None."""
        raise NotImplementedError

    def token_endpoint(self):
        """The URL where the plugin exchanges the code (the contract makes it misbehave)."""
        raise NotImplementedError

    def app_config(self):
        return {"PUBLIC_URL": self.public_url, "ALLOW_INSECURE_HTTP": True}

    # -- fixtures (override ``contract_app`` to build the app your own way) ------------------------------
    @pytest.fixture
    def contract_app(self, tmp_path):
        import flask_migrate

        from geologin import create_app

        app = create_app({"TESTING": True, "SECRET_KEY": secrets.token_urlsafe(48),
                          "ENCRYPTION_KEY": Fernet.generate_key().decode(), "INSTANCE_PATH": str(tmp_path),
                          "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'contract.sqlite3'}",
                          **self.app_config()})
        with app.app_context():
            flask_migrate.upgrade()
        return app

    @pytest.fixture
    def contract_client(self, contract_app):
        return contract_app.test_client()

    @pytest.fixture(autouse=True)
    def server(self):
        """The identity server's canned answers (a requests_mock.Mocker), active for the whole test."""
        with requests_mock.Mocker() as mock:
            self.mock = mock
            self.answer_start(mock)
            yield mock

    # -- steps of a login ---------------------------------------------------------------------------
    def register(self, app, slug="contract", *, allow=("alice",), allow_all=False, label=None):
        from geologin import idp as instances
        from geologin.models import User

        with app.app_context():
            instance = instances.create_instance(self.provider_type, slug=slug, label=label or f"Server {slug}",
                                                 settings=dict(self.settings), secrets=dict(self.secrets),
                                                 allow_all_users=allow_all, actor="contract")
            users = [User.by_username(name) for name in allow]
            if any(users):
                instances.allow([user for user in users if user], instance, actor="contract")
            return slug

    def make_user(self, app, username="alice", active=True):
        from geologin.accounts import users
        from geologin.extensions import db

        with app.app_context():
            user = users.create_user(username, password=None, actor="contract")
            user.active = active
            db.session.commit()

    def start(self, client, slug="contract", headers=None):
        """Click the login button: geologin's redirect to the server, as (URL, its query parameters)."""
        token = _csrf(client.get("/login"))
        response = client.post("/auth/start", data={"csrf_token": token, "provider": slug}, headers=headers)
        assert response.status_code == 302, response.get_data(as_text=True)[:300]
        location = response.headers["Location"]
        return location, {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}

    def callback(self, client, login, extra=None, path=None, **overrides):
        """The browser comes back to geologin with what the server put in the redirect."""
        params = {"code": login.code, "state": login.request.get("state"), **(extra or {}), **overrides}
        params = {k: v for k, v in params.items() if v is not None}
        path = path or urlsplit(login.request["redirect_uri"]).path
        return client.get(path + "?" + urlencode(params))

    def login(self, client, slug="contract", account=None, **overrides):
        """A whole login with the server's canned answers: (the callback's response, the Login)."""
        _, request = self.start(client, slug)
        login = Login(account or self.account, request)
        extra = self.answer_login(self.mock, login) or {}
        return self.callback(client, login, extra, **overrides), login

    def ready(self, app, **kwargs):
        self.make_user(app)
        return self.register(app, **kwargs)

    # -- what a person sees -------------------------------------------------------------------------------
    @staticmethod
    def logged_in(client):
        return client.get("/").status_code == 200

    @staticmethod
    def last_login(app):
        from sqlalchemy import select

        from geologin.extensions import db
        from geologin.models import AuditEvent

        with app.app_context():
            event = db.session.scalars(select(AuditEvent).where(AuditEvent.event_type == "login")
                                       .order_by(AuditEvent.id.desc())).first()
            return (event.outcome, event.reason_code, event.provider, event.target) if event else None

    # -- the happy path ---------------------------------------------------------------------------------
    def test_contract_login_logs_in_the_matching_user(self, contract_app, contract_client):
        self.ready(contract_app)
        response, _ = self.login(contract_client)
        assert response.status_code == 302 and response.headers["Location"] == "/"
        assert self.logged_in(contract_client)
        assert self.last_login(contract_app) == ("success", None, "contract", self.account.username)

    def test_contract_login_page_offers_the_instance(self, contract_app, contract_client):
        self.register(contract_app, label="Contract server")
        html = contract_client.get("/login").get_data(as_text=True)
        assert 'value="contract"' in html and 'action="/auth/start"' in html

    # -- A. the authorization-code flow -----------------------------------------------------------------
    def test_sec_01_state_is_random_single_use_and_required(self, contract_app, contract_client):
        self.ready(contract_app)
        _, request = self.start(contract_client)
        assert len(request["state"]) >= 22  # >= 128 bits in base64url
        login = Login(self.account, request)
        extra = self.answer_login(self.mock, login) or {}
        self.callback(contract_client, login, extra, state=None)
        assert not self.logged_in(contract_client)
        assert self.last_login(contract_app)[:2] == ("failure", "state_invalid")
        self.callback(contract_client, login, extra)
        assert self.logged_in(contract_client)
        contract_client.post("/logout", data={"csrf_token": _csrf(contract_client.get("/"))})
        self.callback(contract_client, login, extra)  # replayed
        assert not self.logged_in(contract_client)
        assert self.last_login(contract_app)[:2] == ("failure", "state_invalid")

    def test_sec_02_pkce_s256_with_a_fresh_verifier_each_time(self, contract_app, contract_client):
        self.register(contract_app)
        first, second = self.start(contract_client)[1], self.start(contract_client)[1]
        assert first["code_challenge_method"] == second["code_challenge_method"] == "S256"
        assert len(first["code_challenge"]) == 43 and first["code_challenge"] != second["code_challenge"]
        assert first["state"] != second["state"]

    def test_sec_03_code_injected_into_another_browser_logs_nobody_in(self, contract_app, contract_app_client_pair):
        victim, attacker = contract_app_client_pair
        self.ready(contract_app)
        _, request = self.start(attacker)
        login = Login(self.account, request)
        extra = self.answer_login(self.mock, login) or {}
        self.start(victim)
        self.callback(victim, login, extra)
        assert not any(r.url.startswith(self.token_endpoint()) for r in self.mock.request_history)
        assert not self.logged_in(victim) and not self.logged_in(attacker)
        assert self.last_login(contract_app)[:2] == ("failure", "state_invalid")

    @pytest.fixture
    def contract_app_client_pair(self, contract_app):
        return contract_app.test_client(), contract_app.test_client()

    def test_sec_04_callback_for_another_instance_is_refused(self, contract_app, contract_client):
        self.ready(contract_app)
        self.register(contract_app, "contract-other")
        response, _ = self.login(contract_client, path="/auth/contract-other/callback")
        assert not self.logged_in(contract_client)
        assert self.last_login(contract_app)[:2] == ("failure", "state_invalid")
        assert response.headers["Location"].endswith("/login")

    def test_sec_06_redirect_uri_comes_from_configuration(self, contract_app, contract_client):
        self.register(contract_app)
        _, request = self.start(contract_client, headers={"X-Forwarded-Host": "evil.example", "X-Forwarded-For": "203.0.113.9",
                                                          "X-Forwarded-Proto": "http"})
        assert request["redirect_uri"].startswith(self.public_url + "/")
        assert "evil.example" not in request["redirect_uri"]

    def test_sec_08_callback_sends_no_referrer_and_redirects_at_once(self, contract_app, contract_client):
        self.ready(contract_app)
        response, _ = self.login(contract_client)
        assert response.status_code == 302 and response.headers["Referrer-Policy"] == "no-referrer"

    def test_sec_10_start_is_a_post_with_a_csrf_token(self, contract_app, contract_client):
        self.register(contract_app)
        assert contract_client.get("/auth/start?provider=contract").status_code == 405
        assert contract_client.post("/auth/start", data={"provider": "contract"}).status_code == 400

    @pytest.mark.parametrize("params, reason", [({"error": "access_denied"}, "access_denied"),
                                                ({"error": "server_error", "error_description": "x\r\nforged"},
                                                 "provider_error"),
                                                ({"code": None}, "provider_error")])
    def test_sec_11_error_answers_fail_cleanly_and_use_up_the_state(self, contract_app, contract_client, params,
                                                                    reason):
        self.ready(contract_app)
        _, request = self.start(contract_client)
        login = Login(self.account, request)
        extra = self.answer_login(self.mock, login) or {}
        overrides = dict(params)
        if "error" in params:
            overrides["code"] = None
        response = self.callback(contract_client, login, extra, **overrides)
        assert response.status_code == 302 and self.last_login(contract_app)[:2] == ("failure", reason)
        self.callback(contract_client, login, extra)
        assert not self.logged_in(contract_client)
        assert self.last_login(contract_app)[:2] == ("failure", "state_invalid")

    def test_sec_12_code_flow_only_and_no_token_in_any_url(self, contract_app, contract_client):
        self.ready(contract_app)
        response, login = self.login(contract_client)
        assert login.request["response_type"] == "code"
        assert login.access_token not in response.headers["Location"]
        assert "token" not in urlsplit(response.headers["Location"]).query

    def test_sec_14_username_must_match_exactly(self, contract_app, contract_client):
        self.ready(contract_app)
        self.login(contract_client, account=replace(self.account, username=self.account.username.upper()))
        assert not self.logged_in(contract_client)
        assert self.last_login(contract_app)[:2] == ("failure", "unknown_user")

    def test_sec_14_permission_for_one_instance_grants_no_other(self, contract_app, contract_client):
        self.ready(contract_app)
        self.register(contract_app, "contract-b", allow=())
        self.login(contract_client, slug="contract-b")
        assert not self.logged_in(contract_client)
        assert self.last_login(contract_app)[:3] == ("failure", "not_allowed", "contract-b")

    def test_sec_14_reason_identity_mismatch_when_another_account_takes_the_username(self, contract_app,
                                                                                      contract_client):
        self.ready(contract_app)
        self.login(contract_client)
        contract_client.post("/logout", data={"csrf_token": _csrf(contract_client.get("/"))})
        self.login(contract_client, account=replace(self.account, subject="someone-else-0002"))
        assert not self.logged_in(contract_client)
        assert self.last_login(contract_app)[:2] == ("failure", "identity_mismatch")

    def test_sec_15_no_token_or_code_in_the_session_cookie(self, contract_app, contract_client):
        self.ready(contract_app)
        _, login = self.login(contract_client)
        cookie = contract_client.get_cookie(contract_app.config["SESSION_COOKIE_NAME"]).value
        payload = _cookie_payload(cookie)
        assert login.access_token not in payload and login.code not in payload

    # -- the core's user matching: every reason code ----------------------------------------------------
    def test_contract_reason_unknown_user(self, contract_app, contract_client):
        self.register(contract_app, allow_all=True)
        self.login(contract_client)
        assert self.last_login(contract_app) == ("failure", "unknown_user", "contract", self.account.username)

    def test_contract_reason_not_allowed(self, contract_app, contract_client):
        self.make_user(contract_app)
        self.register(contract_app, allow=())
        self.login(contract_client)
        assert self.last_login(contract_app) == ("failure", "not_allowed", "contract", self.account.username)

    def test_contract_reason_inactive_user(self, contract_app, contract_client):
        self.make_user(contract_app, active=False)
        self.register(contract_app, allow_all=True)
        self.login(contract_client)
        assert self.last_login(contract_app)[:2] == ("failure", "inactive_user")

    # -- F. a misbehaving server ----------------------------------------------------------------------
    @pytest.mark.parametrize("answer", [
        {"text": "<html>Welcome</html>", "headers": {"Content-Type": "text/html"}},
        {"json": [1, 2]}, {"json": {"token_type": "Bearer"}}, {"json": {"access_token": "a", "token_type": "mac"}},
        {"json": {"access_token": 7, "token_type": "Bearer"}},
        {"status_code": 400, "json": {"error": "invalid_grant"}}, {"status_code": 401, "json": {"error": "x"}},
    ], ids=["html", "array", "no-access-token", "mac", "number-token", "invalid-grant", "401"])
    def test_sec_48_unusable_token_answers_fail_cleanly(self, contract_app, contract_client, answer):
        self.ready(contract_app)
        _, request = self.start(contract_client)
        login = Login(self.account, request)
        extra = self.answer_login(self.mock, login) or {}
        self.mock.post(self.token_endpoint(), **answer)
        response = self.callback(contract_client, login, extra)
        assert response.status_code == 302 and not self.logged_in(contract_client)
        assert self.last_login(contract_app)[:2] == ("failure", "provider_error")

    @pytest.mark.parametrize("answer", [{"status_code": 503, "text": "down"},
                                        {"exc": requests.exceptions.ConnectionError},
                                        {"exc": requests.exceptions.ReadTimeout}],
                             ids=["503", "refused", "timeout"])
    def test_sec_47_server_down_fails_cleanly_and_the_code_is_never_retried(self, contract_app, contract_client,
                                                                           answer):
        self.ready(contract_app)
        _, request = self.start(contract_client)
        login = Login(self.account, request)
        extra = self.answer_login(self.mock, login) or {}
        token_calls = self.mock.post(self.token_endpoint(), **answer)
        response = self.callback(contract_client, login, extra)
        assert response.status_code == 302 and not self.logged_in(contract_client)
        assert self.last_login(contract_app)[:2] == ("failure", "provider_unavailable")
        assert token_calls.call_count == 1  # item 52

    # -- G. the audit trail -------------------------------------------------------------------------------
    def test_sec_53_sec_54_audit_and_logs_name_the_server_and_hold_no_secret(self, contract_app, contract_client,
                                                                            caplog):
        from sqlalchemy import select

        from geologin.extensions import db
        from geologin.models import AuditEvent

        self.ready(contract_app)
        with caplog.at_level(logging.DEBUG):
            _, login = self.login(contract_client)
        with contract_app.app_context():
            rows = " ".join(json.dumps([e.event_type, e.actor, e.target, e.detail, e.reason_code])
                            for e in db.session.scalars(select(AuditEvent)))
        secrets_seen = [value for value in (login.code, login.access_token, *self.secrets.values())
                        if value and (value in rows or value in caplog.text)]
        assert secrets_seen == []
        assert self.last_login(contract_app)[2] == "contract"


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
        mock.post(metadata["token_endpoint"], headers=JSON,
                  json={"access_token": login.access_token, "token_type": "Bearer", "expires_in": 300,
                        "id_token": id_token or self.id_token(login)})
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
                header = _b64(json.dumps({"alg": "HS256", "kid": RSA_KEY.kid}))
                body = _b64(json.dumps(_claims_of(self.id_token(login))))
                public = RSA_KEY.as_pem(private=False)
                signature = hmac.new(public, f"{header}.{body}".encode(), hashlib.sha256).digest()
                return f"{header}.{body}.{_b64(signature)}"
            if forge == "alg-none":
                return (_b64(json.dumps({"alg": "none"})) + "." +
                        _b64(json.dumps(_claims_of(self.id_token(login)))) + ".")
            token = self.id_token(login)
            header, _, signature = token.split(".")
            claims = {**_claims_of(token), "sub": "someone-else"}
            return f"{header}.{_b64(json.dumps(claims))}.{signature}"

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
        response = contract_client.post("/auth/start", data={"csrf_token": _csrf(contract_client.get("/login")),
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


def _csrf(response):
    html = response.get_data(as_text=True)
    marker = 'name="csrf_token" value="'
    assert marker in html, "page has no CSRF token"
    return html.split(marker, 1)[1].split('"', 1)[0]


def _b64(data):
    data = data.encode() if isinstance(data, str) else data
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims_of(token):
    body = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


def _cookie_payload(cookie):
    """What a signed (not encrypted) Flask session cookie carries, decoded."""
    import zlib

    body = cookie.lstrip(".").split(".")[0]
    raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    return (zlib.decompress(raw) if cookie.startswith(".") else raw).decode(errors="replace")
