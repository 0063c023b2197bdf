"""The plugin kit's test app and the steps of a login: an app on a fresh database, the identity server's
canned answers (requests_mock), and a person clicking through geologin's login with them."""
import secrets
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests_mock
from cryptography.fernet import Fernet

JSON = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class Account:
    """A person's account at the identity server."""

    username: str = "alice"
    subject: str = "subject-of-alice-0001"
    email: str | None = "alice@example.org"
    name: str | None = "Alice Example"
    groups: tuple = ()  # names of the groups the server says the person is in


@dataclass
class Login:
    """One login as the server sees it: who signs in, geologin's authorization request (its query
    parameters), and what the server hands out for it."""

    account: Account
    request: dict
    code: str = field(default_factory=lambda: "code-" + secrets.token_urlsafe(16))
    access_token: str = field(default_factory=lambda: "at-" + secrets.token_urlsafe(24))
    refresh_token: str = field(default_factory=lambda: "rt-" + secrets.token_urlsafe(24))
    id_token: str | None = None  # set by a server that sends one (OIDCContract.answer_login)

    def tokens(self):
        """The code and the tokens the server handed out: none may show in a URL, the session cookie, a log
        line or an audit row."""
        return [value for value in (self.code, self.access_token, self.refresh_token, self.id_token) if value]


class LoginHarness:
    """Fixtures and steps for logging in through geologin against canned server answers; no tests of its own
    (``ProviderContract`` adds those). Subclasses set ``provider_type``, ``settings`` and ``secrets`` and
    implement ``answer_login`` and ``token_endpoint``."""

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

    def external_group_id(self, name):
        """The server's id of the group called ``name`` in ``Account.groups`` (the name itself by default:
        a server that gives groups by name, like a groups claim)."""
        return name

    def map_group(self, app, group_name, external_name, *, purpose="access", slug="contract"):
        """Create geologin group ``group_name`` for the members of the server's group ``external_name`` and
        give it to instance ``slug`` for ``purpose`` ("access": who may log in, "create": who gets an
        account on a first login)."""
        from geologin.extensions import db
        from geologin.idp import permissions
        from geologin.models import Group, GroupMapping, IdentityProvider

        with app.app_context():
            provider = IdentityProvider.by_slug(slug)
            group = Group.by_name(group_name)
            if group is None:
                group = Group(name=group_name)
                db.session.add(group)
                db.session.flush()
                db.session.add(GroupMapping(group_id=group.id, provider_id=provider.id, external_name=external_name,
                                            external_id=self.external_group_id(external_name)))
                db.session.commit()
            wanted = permissions.access_group_ids(provider, purpose) | {group.id}
            permissions.set_groups(provider, db.session.scalars(select_groups(wanted)), purpose=purpose,
                                       actor="contract")

    def expected_redirect_uri(self, slug):
        """The redirect URI the plugin must send for instance ``slug`` (override for a fixed callback path)."""
        return f"{self.public_url}/auth/{slug}/callback"

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
        from geologin import idp
        from geologin.models import User

        with app.app_context():
            instance = idp.create_provider(self.provider_type, slug=slug, label=label or f"Server {slug}",
                                                 settings=dict(self.settings), secrets=dict(self.secrets),
                                                 allow_all_users=allow_all, actor="contract")
            users = [User.by_username(name) for name in allow]
            if any(users):
                idp.allow([user for user in users if user], instance, actor="contract")
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
        token = csrf_token_of(client.get("/login"))
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

    def logout(self, client):
        client.post("/logout", data={"csrf_token": csrf_token_of(client.get("/"))})

    def ready(self, app, **kwargs):
        self.make_user(app)
        return self.register(app, **kwargs)

    # -- what a person sees -------------------------------------------------------------------------------
    @staticmethod
    def logged_in(client):
        return client.get("/").status_code == 200

    @staticmethod
    def stored_groups(app, username="alice", slug="contract"):
        """(names of the groups geologin stored for ``username`` from provider ``slug``, when they were
        seen), or None when nothing is stored."""
        from sqlalchemy import select

        from geologin.extensions import db
        from geologin.idp import attributes
        from geologin.models import ExternalIdentity, IdentityProvider, User

        with app.app_context():
            binding = db.session.scalar(select(ExternalIdentity).where(
                ExternalIdentity.user_id == User.by_username(username).id,
                ExternalIdentity.provider_id == IdentityProvider.by_slug(slug).id))
            if binding is None:
                return None
            seen = attributes.as_dict(binding)
            return sorted(group["name"] for group in seen["groups"]), seen["seen_at"]

    @staticmethod
    def last_login_detail(app):
        from sqlalchemy import select

        from geologin.extensions import db
        from geologin.models import AuditEvent

        with app.app_context():
            return db.session.scalars(select(AuditEvent.detail).where(AuditEvent.event_type == "login")
                                      .order_by(AuditEvent.id.desc())).first() or ""

    @staticmethod
    def last_login(app):
        from sqlalchemy import select

        from geologin.extensions import db
        from geologin.models import AuditEvent

        with app.app_context():
            event = db.session.scalars(select(AuditEvent).where(AuditEvent.event_type == "login")
                                       .order_by(AuditEvent.id.desc())).first()
            return (event.outcome, event.reason_code, event.provider, event.target) if event else None


def select_groups(ids):
    from sqlalchemy import select

    from geologin.models import Group

    return select(Group).where(Group.id.in_(ids))


def csrf_token_of(response):
    html = response.get_data(as_text=True)
    marker = 'name="csrf_token" value="'
    assert marker in html, "page has no CSRF token"
    return html.split(marker, 1)[1].split('"', 1)[0]
