"""The tests every provider plugin passes, run on each plugin: the happy path, every failure reason code, and
the security checklist items that hold for every plugin."""
import json
import logging
from dataclasses import replace
from urllib.parse import urlsplit

import pytest
import requests

from .app import Login, LoginHarness, csrf_token_of
from .tokens import session_cookie_payload


class ProviderContract(LoginHarness):
    """The contract every provider plugin passes. Subclasses set ``provider_type``, ``settings`` and
    ``secrets`` and implement ``answer_login`` and ``token_endpoint``."""

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
        contract_client.post("/logout", data={"csrf_token": csrf_token_of(contract_client.get("/"))})
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
        contract_client.post("/logout", data={"csrf_token": csrf_token_of(contract_client.get("/"))})
        self.login(contract_client, account=replace(self.account, subject="someone-else-0002"))
        assert not self.logged_in(contract_client)
        assert self.last_login(contract_app)[:2] == ("failure", "identity_mismatch")

    def test_sec_15_no_token_or_code_in_the_session_cookie(self, contract_app, contract_client):
        self.ready(contract_app)
        _, login = self.login(contract_client)
        cookie = contract_client.get_cookie(contract_app.config["SESSION_COOKIE_NAME"]).value
        payload = session_cookie_payload(cookie)
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
