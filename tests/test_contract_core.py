"""What the core does around every plugin's login, tested once against the least a plugin can be: the state
(random, single use, bound to the browser, expiring), the callback's own checks, the session, the audit
fields and what a person reads. The kit's contract (geologin.providers.testing) runs what depends on the
plugin for each plugin (tests/test_contract_*.py)."""
import pytest
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from sqlalchemy import select

from geologin.extensions import db
from geologin.models import AuditEvent, LoginTransaction
from geologin.providers import Identity, OAuth2Provider, Setting
from geologin.providers.testing import JSON, Login, LoginHarness, csrf_token_of
from geologin.providers.testing.tokens import session_cookie_payload
from tests.contract import RepoContract

SERVER = "https://id.example.org"


class MinimalProvider(OAuth2Provider):
    """The least a plugin can be: an authorize and a token URL, and who logged in from ``/api/user``."""

    type = "minimal"
    display_name = "Minimal ID"
    settings = (Setting("server_url", "Server", kind="url", required=True),
                Setting("client_id", "Client ID", required=True),
                Setting("client_secret", "Client secret", kind="secret", required=True))

    def endpoints(self):
        return {"authorization_endpoint": SERVER + "/oauth/authorize", "token_endpoint": SERVER + "/oauth/token"}

    def identity_from(self, tokens, claims):
        user = self.http.get(SERVER + "/api/user", headers={"Authorization": f"Bearer {tokens['access_token']}"})
        user = user.json()
        return Identity(subject=user["id"], subject_scheme="minimal-id", username=user["login"])


class TestCoreLogin(RepoContract, LoginHarness):
    provider_type = "minimal"
    settings = {"server_url": SERVER, "client_id": "geologin"}
    secrets = {"client_secret": "minimal-secret-0123456789"}

    @pytest.fixture
    def contract_app(self, app_factory, tmp_path):
        """The app with MinimalProvider as its only plugin (a plugins folder whose one plugin imports it)."""
        folder = tmp_path / "plugins" / "minimal"
        folder.mkdir(parents=True)
        (folder / "__init__.py").write_text(f"from {__name__} import MinimalProvider as provider\n")
        return app_factory(**self.app_config(), PLUGINS_FOLDER=[str(folder.parent)])

    @pytest.fixture
    def contract_app_client_pair(self, contract_app):
        return contract_app.test_client(), contract_app.test_client()

    def token_endpoint(self):
        return SERVER + "/oauth/token"

    def answer_login(self, mock, login):
        mock.post(self.token_endpoint(), headers=JSON, json={
            "access_token": login.access_token, "token_type": "bearer", "refresh_token": login.refresh_token})
        mock.get(SERVER + "/api/user", headers=JSON,
                 json={"id": login.account.subject, "login": login.account.username})

    def prepared(self, client, slug="contract"):
        """A started login whose server answers are ready: (the Login, the callback's extra parameters)."""
        _, request = self.start(client, slug)
        login = Login(self.account, request)
        return login, self.answer_login(self.mock, login) or {}

    def token_calls(self):
        return sum(1 for r in self.mock.request_history if r.url == self.token_endpoint())

    @staticmethod
    def last_detail(app):
        with app.app_context():
            return db.session.scalars(select(AuditEvent.detail).where(AuditEvent.event_type == "login")
                                      .order_by(AuditEvent.id.desc())).first()

    @staticmethod
    def flashed_error(client):
        html = client.get("/login").get_data(as_text=True)
        return html.split('class="flash flash-error"', 1)[1].split("</p>", 1)[0] if "flash-error" in html else ""

    def log_out(self, client):
        client.post("/logout", data={"csrf_token": csrf_token_of(client.get("/"))})

    # -- the state (item 1) and the browser binding (items 1, 3) --------------------------------------------
    def test_sec_01_state_is_random_single_use_and_required(self, contract_app, contract_client):
        self.ready(contract_app)
        first, second = self.start(contract_client)[1]["state"], self.start(contract_client)[1]["state"]
        assert first != second and len(first) >= 43  # 32 random bytes, base64url
        login, extra = self.prepared(contract_client)
        for made_up in ({"state": None}, {"state": "made-up"}, {"state": None, "code": None, "error": "access_denied"}):
            self.callback(contract_client, login, extra, **made_up)
            assert not self.logged_in(contract_client)
            assert self.last_login(contract_app)[:2] == ("failure", "state_invalid")
        self.callback(contract_client, login, extra)
        assert self.logged_in(contract_client)
        self.log_out(contract_client)
        self.callback(contract_client, login, extra)  # replayed
        assert not self.logged_in(contract_client)
        assert self.last_login(contract_app)[:2] == ("failure", "state_invalid")

    def test_sec_01_state_expires(self, contract_app, contract_client):
        self.ready(contract_app)
        login, extra = self.prepared(contract_client)
        contract_app.config["LOGIN_TRANSACTION_MINUTES"] = 0
        self.callback(contract_client, login, extra)
        assert not self.logged_in(contract_client)
        assert self.last_login(contract_app)[:2] == ("failure", "state_invalid")
        assert "expired" in self.last_detail(contract_app)

    @pytest.mark.parametrize("victim_started_a_login", [True, False], ids=["victim-mid-login", "victim-idle"])
    def test_sec_01_sec_03_a_login_from_another_browser_logs_nobody_in(self, contract_app, contract_app_client_pair,
                                                                       victim_started_a_login):
        """Login CSRF and code injection: an attacker's authorization response fed to a victim's browser logs
        nobody in, never reaches the token endpoint, and is used up."""
        victim, attacker = contract_app_client_pair
        self.ready(contract_app)
        login, extra = self.prepared(attacker)
        if victim_started_a_login:
            self.start(victim)
        else:
            victim.get("/login")
        self.callback(victim, login, extra)
        assert self.token_calls() == 0
        assert not self.logged_in(victim) and not self.logged_in(attacker)
        assert self.last_login(contract_app)[:2] == ("failure", "state_invalid")
        assert self.last_detail(contract_app) == "state belongs to another browser"
        self.callback(attacker, login, extra)  # the rejected attempt used the state up
        assert not self.logged_in(attacker) and self.token_calls() == 0

    def test_sec_02_a_fresh_verifier_is_kept_for_every_login(self, contract_app, contract_client):
        self.register(contract_app)
        challenges = {self.start(contract_client)[1]["code_challenge"] for _ in range(3)}
        with contract_app.app_context():
            verifiers = list(db.session.scalars(select(LoginTransaction.code_verifier)))
        assert len(set(verifiers)) == 3 and all(len(v) >= 43 for v in verifiers)
        assert {create_s256_code_challenge(v) for v in verifiers} == challenges

    def test_sec_04_callback_for_another_instance_is_refused(self, contract_app, contract_client):
        self.ready(contract_app)
        self.register(contract_app, "contract-other")
        response, _ = self.login(contract_client, path="/auth/contract-other/callback")
        assert response.headers["Location"].endswith("/login") and not self.logged_in(contract_client)
        assert self.last_login(contract_app) == ("failure", "state_invalid", "contract", None)
        assert "transaction for 'contract'" in self.last_detail(contract_app)
        assert self.token_calls() == 0

    # -- the callback and the start (items 8, 10) --------------------------------------------------------
    def test_sec_08_callback_sends_no_referrer_and_redirects_at_once(self, contract_app, contract_client):
        self.ready(contract_app)
        response, _ = self.login(contract_client)
        assert response.status_code == 302 and response.headers["Referrer-Policy"] == "no-referrer"
        assert response.get_data(as_text=True).count("<script") == 0
        assert "http" not in response.headers.get("Content-Security-Policy", "").replace("'self'", "")
        failed = contract_client.get("/auth/contract/callback?error=access_denied&state=x")
        assert failed.status_code == 302 and failed.headers["Referrer-Policy"] == "no-referrer"

    def test_sec_10_start_is_a_post_with_a_csrf_token(self, contract_app, contract_client):
        self.register(contract_app)
        assert contract_client.get("/auth/start?provider=contract").status_code == 405
        assert contract_client.post("/auth/start", data={"provider": "contract"}).status_code == 400
        with contract_app.app_context():
            assert db.session.scalars(select(LoginTransaction)).first() is None

    # -- what a person reads (items 11, 47, 48) ---------------------------------------------------------
    @pytest.mark.parametrize("params, reason, message", [
        ({"error": "access_denied", "error_description": "User denied access"}, "access_denied",
         "You did not authorize the login at Server contract"),
        ({"error": "server_error", "error_description": "Oops"}, "provider_error",
         "Server contract sent an answer geologin cannot use"),
        ({}, "provider_error", "Server contract sent an answer geologin cannot use"),  # neither code nor error
    ], ids=["access-denied", "server-error", "nothing"])
    def test_sec_11_error_answers_say_what_happened_and_use_up_the_state(self, contract_app, contract_client, params,
                                                                         reason, message):
        self.ready(contract_app)
        login, extra = self.prepared(contract_client)
        response = self.callback(contract_client, login, {"code": None, **params})
        assert response.status_code == 302 and message in self.flashed_error(contract_client)
        assert self.last_login(contract_app)[:2] == ("failure", reason)
        self.callback(contract_client, login, extra)
        assert not self.logged_in(contract_client)
        assert self.last_login(contract_app)[:2] == ("failure", "state_invalid")

    @pytest.mark.parametrize("answer, reason, message", [
        ({"status_code": 500, "text": "<html>Internal Server Error</html>"}, "provider_unavailable",
         "Server contract cannot be reached right now"),
        ({"text": "<html>Welcome</html>", "headers": {"Content-Type": "text/html"}}, "provider_error",
         "Server contract sent an answer geologin cannot use"),
    ], ids=["5xx", "nonsense"])
    def test_sec_47_sec_48_a_failing_server_gets_a_clear_message(self, contract_app, contract_client, answer, reason,
                                                                 message):
        self.ready(contract_app)
        login, extra = self.prepared(contract_client)
        self.mock.post(self.token_endpoint(), **answer)
        self.callback(contract_client, login, extra)
        assert message in self.flashed_error(contract_client) and not self.logged_in(contract_client)
        assert self.last_login(contract_app)[:2] == ("failure", reason)

    # -- matching the identity to a user (item 14) -----------------------------------------------------------
    def test_reason_unknown_user(self, contract_app, contract_client):
        self.register(contract_app, allow_all=True)
        self.login(contract_client)
        assert "User alice does not exist here" in self.flashed_error(contract_client)
        assert self.last_login(contract_app) == ("failure", "unknown_user", "contract", self.account.username)

    def test_reason_not_allowed(self, contract_app, contract_client):
        self.make_user(contract_app)
        self.register(contract_app, allow=())
        self.login(contract_client)
        assert "is not allowed to log in through Server contract" in self.flashed_error(contract_client)
        assert self.last_login(contract_app) == ("failure", "not_allowed", "contract", self.account.username)
        assert not self.logged_in(contract_client)

    def test_reason_inactive_user(self, contract_app, contract_client):
        self.make_user(contract_app, active=False)
        self.register(contract_app, allow_all=True)
        self.login(contract_client)
        assert "deactivated" in self.flashed_error(contract_client)
        assert self.last_login(contract_app)[:2] == ("failure", "inactive_user")

    def test_allow_all_users_lets_an_active_user_in_without_a_permission_of_its_own(self, contract_app,
                                                                                    contract_client):
        self.make_user(contract_app)
        self.register(contract_app, allow=(), allow_all=True)
        self.login(contract_client)
        assert self.logged_in(contract_client)

    def test_sec_14_permission_for_one_instance_grants_no_other(self, contract_app, contract_client):
        self.ready(contract_app)
        self.register(contract_app, "contract-b", allow=())
        self.login(contract_client, slug="contract-b")
        assert not self.logged_in(contract_client)
        assert self.last_login(contract_app)[:3] == ("failure", "not_allowed", "contract-b")

    # -- the session (item 15), the code (item 52), the audit (item 53) -----------------------------------
    def test_sec_15_no_token_or_code_in_the_session_cookie(self, contract_app, contract_client):
        self.ready(contract_app)
        _, login = self.login(contract_client)
        assert self.logged_in(contract_client)
        payload = session_cookie_payload(contract_client.get_cookie(contract_app.config["SESSION_COOKIE_NAME"]).value)
        assert [value for value in login.tokens() if value in payload] == []
        with contract_client.session_transaction() as session:
            assert set(session) <= {"sid", "_user_id", "_fresh", "_id", "csrf_token", "_permanent"}

    def test_sec_52_a_code_is_exchanged_once_and_never_retried(self, contract_app, contract_client):
        self.ready(contract_app)
        login, extra = self.prepared(contract_client)
        self.callback(contract_client, login, extra)
        self.callback(contract_client, login, extra)  # replayed
        assert self.token_calls() == 1
        self.log_out(contract_client)
        login, extra = self.prepared(contract_client)
        self.mock.post(self.token_endpoint(), status_code=500, text="down")
        self.callback(contract_client, login, extra)
        assert self.token_calls() == 2  # the failed exchange was not retried
        assert self.last_login(contract_app)[:2] == ("failure", "provider_unavailable")

    def test_sec_53_login_events_carry_time_actor_ip_and_server(self, contract_app, contract_client):
        self.ready(contract_app)
        self.login(contract_client)
        with contract_app.app_context():
            event = db.session.scalars(select(AuditEvent).where(AuditEvent.event_type == "login")).one()
            assert (event.outcome, event.actor, event.client_ip, event.provider) == ("success", "alice", "127.0.0.1",
                                                                                     "contract")
            assert event.created_at.tzinfo is not None
