"""The tests every provider plugin passes, run on each plugin: what the plugin sends, validates and maps. What
the core does whatever the plugin (the state, browser binding, replay, the session, the audit fields, the
messages) is tested once, in geologin's own suite (tests/test_contract_core.py)."""
import json
import logging
from dataclasses import replace
from urllib.parse import urlsplit

import pytest
import requests

from .app import Login, LoginHarness, csrf_token_of

class ProviderContract(LoginHarness):
    """The contract every provider plugin passes. Subclasses set ``provider_type``, ``settings`` and
    ``secrets`` and implement ``answer_login`` and ``token_endpoint``; a plugin with a fixed callback path
    overrides ``expected_redirect_uri``. A plugin that maps the server's groups sets ``maps_groups`` and
    makes ``answer_login`` state ``login.account.groups`` (names) as its server does."""

    maps_groups = False

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

    # -- groups --------------------------------------------------------------------------------------------
    def test_contract_groups_the_server_states_are_stored_with_the_time_seen(self, contract_app, contract_client):
        if not self.maps_groups:
            pytest.skip("this plugin maps no groups")
        self.ready(contract_app)
        self.login(contract_client, account=replace(self.account, groups=("Malaria programme", "Data managers")))
        assert self.logged_in(contract_client)
        names, seen_at = self.stored_groups(contract_app)
        assert names == ["Data managers", "Malaria programme"] and seen_at is not None

    def test_contract_groups_changed_at_the_server_replace_the_stored_ones(self, contract_app, contract_client):
        if not self.maps_groups:
            pytest.skip("this plugin maps no groups")
        self.ready(contract_app)
        self.login(contract_client, account=replace(self.account, groups=("Malaria programme", "Data managers")))
        self.logout(contract_client)
        self.login(contract_client, account=replace(self.account, groups=("Data managers", "HIV programme")))
        assert self.logged_in(contract_client)
        assert self.stored_groups(contract_app)[0] == ["Data managers", "HIV programme"]

    def test_contract_no_groups_at_the_server_clears_the_stored_ones(self, contract_app, contract_client):
        self.ready(contract_app)
        if self.maps_groups:
            self.login(contract_client, account=replace(self.account, groups=("Malaria programme",)))
            assert self.stored_groups(contract_app)[0] == ["Malaria programme"]
            self.logout(contract_client)
        self.login(contract_client, account=replace(self.account, groups=()))
        assert self.logged_in(contract_client)
        names, seen_at = self.stored_groups(contract_app)
        assert names == [] and seen_at is not None

    # -- access by group: judged on the groups this login states -------------------------------------------
    def test_contract_access_by_group_admits_a_member_the_server_names(self, contract_app, contract_client):
        if not self.maps_groups:
            pytest.skip("this plugin maps no groups")
        self.make_user(contract_app)
        self.register(contract_app, allow=())
        self.map_group(contract_app, "Malaria", "Malaria programme")
        self.login(contract_client, account=replace(self.account, groups=("Malaria programme",)))
        assert self.logged_in(contract_client)

    def test_contract_access_by_group_refuses_outside_and_names_the_groups_in_the_audit(self, contract_app,
                                                                                       contract_client):
        if not self.maps_groups:
            pytest.skip("this plugin maps no groups")
        self.make_user(contract_app)
        self.register(contract_app, allow=())
        self.map_group(contract_app, "Malaria", "Malaria programme")
        self.login(contract_client, account=replace(self.account, groups=("HIV programme",)))
        assert not self.logged_in(contract_client)
        assert self.last_login(contract_app)[:2] == ("failure", "not_allowed")
        assert "access group of contract (Malaria)" in self.last_login_detail(contract_app)

    def test_contract_access_by_group_follows_the_server_from_one_login_to_the_next(self, contract_app,
                                                                                   contract_client):
        if not self.maps_groups:
            pytest.skip("this plugin maps no groups")
        self.make_user(contract_app)
        self.register(contract_app, allow=())
        self.map_group(contract_app, "Malaria", "Malaria programme")
        self.login(contract_client, account=replace(self.account, groups=()))
        assert not self.logged_in(contract_client)  # not yet in the group
        self.login(contract_client, account=replace(self.account, groups=("Malaria programme",)))
        assert self.logged_in(contract_client)  # just added at the server: in at once
        self.logout(contract_client)
        self.login(contract_client, account=replace(self.account, groups=("HIV programme",)))
        assert not self.logged_in(contract_client)  # removed at the server: out at the next login
        assert self.last_login(contract_app)[:2] == ("failure", "not_allowed")

    def test_sec_14_access_by_group_never_admits_an_administrator(self, contract_app, contract_client):
        if not self.maps_groups:
            pytest.skip("this plugin maps no groups")
        from geologin.extensions import db
        from geologin.models import User

        self.make_user(contract_app)
        self.register(contract_app, allow=())
        self.map_group(contract_app, "Malaria", "Malaria programme")
        with contract_app.app_context():
            User.by_username(self.account.username).is_admin = True
            db.session.commit()
        self.login(contract_client, account=replace(self.account, groups=("Malaria programme",)))
        assert not self.logged_in(contract_client)
        assert self.last_login(contract_app)[:2] == ("failure", "not_allowed")

    # -- A. what the plugin sends ------------------------------------------------------------------------
    def test_sec_02_pkce_s256_with_a_fresh_verifier_each_time(self, contract_app, contract_client):
        self.register(contract_app)
        first, second = self.start(contract_client)[1], self.start(contract_client)[1]
        assert first["code_challenge_method"] == second["code_challenge_method"] == "S256"
        assert len(first["code_challenge"]) == 43 and first["code_challenge"] != second["code_challenge"]
        assert first["state"] != second["state"]

    def test_sec_06_redirect_uri_comes_from_configuration(self, contract_app, contract_client):
        self.register(contract_app)
        _, request = self.start(contract_client, headers={
            "X-Forwarded-Host": "evil.example", "X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https",
            "Forwarded": "host=evil.example;proto=https"})
        assert request["redirect_uri"] == self.expected_redirect_uri("contract")
        assert "evil.example" not in request["redirect_uri"]

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
        authorization, request = self.start(contract_client)
        login = Login(self.account, request)
        response = self.callback(contract_client, login, self.answer_login(self.mock, login))
        assert request["response_type"] == "code" and self.logged_in(contract_client)
        for url in (authorization, response.headers["Location"]):
            assert [value for value in login.tokens() if value in url] == []
            assert "token" not in urlsplit(url).query

    def test_sec_14_username_must_match_exactly(self, contract_app, contract_client):
        self.ready(contract_app)
        self.login(contract_client, account=replace(self.account, username=self.account.username.upper()))
        assert not self.logged_in(contract_client)
        assert self.last_login(contract_app)[:2] == ("failure", "unknown_user")

    def test_sec_14_reason_identity_mismatch_when_another_account_takes_the_username(self, contract_app,
                                                                                      contract_client):
        self.ready(contract_app)
        self.login(contract_client)
        contract_client.post("/logout", data={"csrf_token": csrf_token_of(contract_client.get("/"))})
        self.login(contract_client, account=replace(self.account, subject="someone-else-0002"))
        assert not self.logged_in(contract_client)
        assert self.last_login(contract_app)[:2] == ("failure", "identity_mismatch")

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
        secrets_seen = [value for value in (*login.tokens(), *self.secrets.values())
                        if value and (value in rows or value in caplog.text)]
        assert secrets_seen == []
        assert self.last_login(contract_app)[2] == "contract"
