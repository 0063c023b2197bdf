"""Every delete takes what depends on it along, and nothing deleted comes back through a reused id
(issue 14, item 1). Run on SQLite and, with GEOLOGIN_TEST_DB=postgresql, on PostgreSQL."""
import hashlib
import secrets
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import column, func, insert, select, table as table_named, text
from sqlalchemy.exc import IntegrityError

from geologin import idp as instances
from geologin.extensions import db
from geologin.apps import clients
from geologin.groups import service as groups
from geologin.models import (Application, ApplicationGroup, ApplicationHost, ApplicationProvider, ApplicationUser,
                             AuthorizationCode, Consent, ExternalIdentity, ForwardAuthVisit, Group, GroupMapping,
                             GroupMember, LoginTransaction, IdentityProvider, OAuthToken, ProviderGroup, User,
                             UserProviderPermission, UserSession, utcnow)
from tests.conftest import AuthActions, STRONG_PASSWORD, csrf_from, post_form

PUBLIC = "http://127.0.0.1:8080"


@pytest.fixture
def app(app_factory):
    return app_factory(ALLOW_INSECURE_HTTP=True, PUBLIC_URL=PUBLIC)


def _provider(app, slug, *, allow=()):
    """A DHIS2 instance forced to the legacy generation, so starting a login needs no server."""
    with app.app_context():
        instance = instances.create_provider(
            "dhis2", slug=slug, label=slug.upper(), actor="test",
            settings={"base_url": "http://dhis2.invalid/", "client_id": "geologin", "generation": "legacy"},
            secrets={"client_secret": "Zq8-not-shown-anywhere-0123456789abcd"})
        if allow:
            instances.allow([User.by_username(name) for name in allow], instance, actor="test")
        return instance.id


def _bind(app, username, provider_id, subject):
    """What a first successful login through the provider leaves: the bound external account."""
    with app.app_context():
        db.session.add(ExternalIdentity(user_id=User.by_username(username).id, provider_id=provider_id,
                                        subject=subject, subject_scheme="dhis2-uid", external_username=username))
        db.session.commit()


def _rows(app, model, **where):
    with app.app_context():
        statement = select(func.count()).select_from(model)
        for name, value in where.items():
            statement = statement.where(getattr(model, name) == value)
        return db.session.scalar(statement)


def _user_id(app, username):
    with app.app_context():
        user = User.by_username(username)
        return user.id if user else None


def _logged_in_as(client):
    response = client.get("/")
    if response.status_code != 200:
        return None
    return response.get_data(as_text=True).split("Logged in as ")[1].split("<")[0]


def _start_login(client, slug):
    """Click the provider's button on the login page; return the state geologin sent to the server."""
    response = post_form(client, "/auth/start", {"provider": slug}, page="/login")
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    return parse_qs(urlsplit(response.headers["Location"]).query)["state"][0]


def _flashed_error(client):
    html = client.get("/login").get_data(as_text=True)
    return html.split('class="flash flash-error"', 1)[1].split("</p>", 1)[0] if "flash-error" in html else ""


def test_reg_foreign_keys_are_enforced(app):
    """A row that names a user who does not exist is refused by the database itself."""
    with app.app_context():
        with pytest.raises(IntegrityError):
            db.session.execute(insert(UserSession.__table__).values(
                id="0" * 64, user_id=987654, created_at=utcnow(), last_seen_at=utcnow(), auth_method="password"))
            db.session.flush()
        db.session.rollback()


def test_reg_foreign_keys_are_enforced_in_memory_sqlite(app_factory, tmp_path):
    """SQLite in memory too (tests and quick trials use it): PRAGMA foreign_keys is on for every connection."""
    from geologin import create_app
    from tests.conftest import make_config
    memory = create_app(make_config("sqlite://", tmp_path / "memory-instance"))
    with memory.app_context():
        assert db.session.execute(text("PRAGMA foreign_keys")).scalar() == 1
        db.session.remove()
        db.engine.dispose()


def test_reg_deleted_users_cookie_never_logs_in_as_the_next_user(app, client, admin_client, make_user):
    make_user("bob")
    bob_id = _user_id(app, "bob")
    bob_browser = app.test_client()
    assert AuthActions(bob_browser).login("bob").status_code == 302
    assert _logged_in_as(bob_browser) == "bob"

    page = admin_client.get(f"/admin/users/{bob_id}/delete")
    assert admin_client.post(f"/admin/users/{bob_id}/delete",
                             data={"csrf_token": csrf_from(page)}).status_code == 302
    assert _rows(app, UserSession, user_id=bob_id) == 0
    response = post_form(admin_client, "/admin/users/new",
                         {"username": "newadmin", "is_admin": "y", "password_login_allowed": "y",
                          "password": STRONG_PASSWORD, "confirm": STRONG_PASSWORD})
    assert response.status_code == 302
    new_id = _user_id(app, "newadmin")
    assert new_id != bob_id and new_id > bob_id
    assert _logged_in_as(bob_browser) is None
    assert bob_browser.get("/admin/users").status_code == 302


def test_reg_session_older_than_its_user_is_refused(app, client, make_user):
    """Even a session row left behind for a reused user id (a database from before foreign keys were
    enforced) cannot log anyone in: a session cannot be older than its user."""
    make_user("carol")
    carol_id = _user_id(app, "carol")
    token = secrets.token_urlsafe(32)
    with app.app_context():
        born = db.session.get(User, carol_id).created_at
        db.session.execute(insert(UserSession.__table__).values(
            id=hashlib.sha256(token.encode()).hexdigest(), user_id=carol_id, created_at=born - timedelta(minutes=5),
            last_seen_at=utcnow(), auth_method="password"))
        db.session.commit()
    with client.session_transaction() as cookie:
        cookie["sid"] = token
        cookie["_user_id"] = str(carol_id)
    assert _logged_in_as(client) is None
    assert _rows(app, UserSession, user_id=carol_id) == 0


def test_reg_deleting_a_user_takes_sessions_permissions_and_identities(app, runner, make_user):
    make_user("bob")
    moh = _provider(app, "moh", allow=["bob"])
    _bind(app, "bob", moh, "bobUid00001")
    bob_id = _user_id(app, "bob")
    assert AuthActions(app.test_client()).login("bob").status_code == 302

    result = runner.invoke(args=["users", "delete", "bob", "--yes"])
    assert result.exit_code == 0, result.output
    for model in (UserSession, UserProviderPermission, ExternalIdentity):
        assert _rows(app, model, user_id=bob_id) == 0, model.__name__

    make_user("bob")  # the same name again: a new person who inherits nothing
    assert _user_id(app, "bob") > bob_id
    with app.app_context():
        new_bob = User.by_username("bob")
        assert not instances.is_allowed(new_bob, db.session.get(IdentityProvider, moh))
        assert instances.identities_of(new_bob) == []
    assert _rows(app, UserProviderPermission) == 0 and _rows(app, ExternalIdentity) == 0


def test_reg_deleting_a_provider_takes_permissions_identities_and_logins(app, admin_client, make_user):
    client = app.test_client()  # bob's browser, in the middle of a login through moh
    make_user("bob")
    moh = _provider(app, "moh", allow=["bob"])
    _bind(app, "bob", moh, "bobUid00001")
    state = _start_login(client, "moh")
    assert _rows(app, LoginTransaction, provider_id=moh) == 1

    page = admin_client.get("/admin/providers/moh/delete")
    assert admin_client.post("/admin/providers/moh/delete", data={"csrf_token": csrf_from(page)}).status_code == 302
    for model in (UserProviderPermission, ExternalIdentity, LoginTransaction):
        assert _rows(app, model, provider_id=moh) == 0, model.__name__

    # The browser comes back from the server after the provider was deleted: a clear page, no 500.
    response = client.get(f"/auth/moh/callback?state={state}&code=abc")
    assert response.status_code == 302 and urlsplit(response.headers["Location"]).path == "/login"
    assert "expired or was not started in this browser" in _flashed_error(client)

    # A new provider (same slug even) is a new id that inherits no permission or bound account.
    new = _provider(app, "moh")
    assert new > moh
    assert _rows(app, UserProviderPermission) == 0 and _rows(app, ExternalIdentity) == 0
    with app.app_context():
        assert not instances.is_allowed(User.by_username("bob"), db.session.get(IdentityProvider, new))


def _signed_in_to(app, application_id, username):
    """What a sign-in to the application leaves: a consent, a used code and the tokens it was exchanged for."""
    with app.app_context():
        user_id = User.by_username(username).id
        now = utcnow()
        db.session.add(Consent(user_id=user_id, application_id=application_id, scope="openid profile"))
        code = AuthorizationCode(code_hash=secrets.token_hex(32), application_id=application_id, user_id=user_id,
                                 redirect_uri="https://app.example.org/cb", scope="openid profile",
                                 auth_time=now, auth_method="password", expires_at=now + timedelta(minutes=1),
                                 used_at=now)
        db.session.add(code)
        db.session.flush()
        db.session.add(OAuthToken(access_token_hash=secrets.token_hex(32), refresh_token_hash=secrets.token_hex(32),
                                  application_id=application_id, user_id=user_id, sid=secrets.token_hex(16),
                                  code_id=code.id, chain=secrets.token_hex(16), scope="openid profile",
                                  auth_time=now, auth_method="password", access_expires_at=now + timedelta(hours=1),
                                  refresh_expires_at=now + timedelta(days=30)))
        db.session.commit()


def test_reg_deleting_an_application_takes_allowed_users_consents_codes_and_tokens(app, admin_client, runner,
                                                                                  make_user):
    """From the admin screen and from the CLI: nothing of the application stays, and a new one with the same
    name is a new id that inherits none of it."""
    make_user("bob")
    moh = _provider(app, "moh")
    with app.app_context():
        screen, _ = clients.create("Superset", ["https://app.example.org/cb"], all_users=False, providers=["moh"],
                                   actor="test")
        scripted, _ = clients.create("Jupyter", ["https://app.example.org/cb"], all_users=False, actor="test")
        for application in (screen, scripted):
            clients.allow(application, [User.by_username("bob")], actor="test")
        screen_id, scripted_id = screen.id, scripted.id
    for application_id in (screen_id, scripted_id):
        _signed_in_to(app, application_id, "bob")
    models = (ApplicationUser, ApplicationProvider, Consent, AuthorizationCode, OAuthToken)
    assert [_rows(app, model, application_id=screen_id) for model in models] == [1, 1, 1, 1, 1]

    page = admin_client.get(f"/admin/apps/{screen_id}/delete")
    assert admin_client.post(f"/admin/apps/{screen_id}/delete",
                             data={"csrf_token": csrf_from(page)}).status_code == 302
    for model in models:
        assert _rows(app, model, application_id=screen_id) == 0, model.__name__
    assert _rows(app, OAuthToken, application_id=scripted_id) == 1  # the other application keeps its own

    result = runner.invoke(args=["apps", "remove", "Jupyter", "--yes"])
    assert result.exit_code == 0, result.output
    for model in (Application, *models):
        assert _rows(app, model) == 0, model.__name__
    assert _rows(app, IdentityProvider, id=moh) == 1 and _user_id(app, "bob") is not None

    with app.app_context():
        again, _ = clients.create("Superset", ["https://app.example.org/cb"], actor="test")
        assert again.id > scripted_id and clients.as_dict(again)["allowed_users"] == []


def _visits(app, browser, url):
    """The proxy asks about ``url`` for this browser (nginx's form); the first access leaves a visit row."""
    return browser.get("/forward-auth/nginx", headers={"X-Original-URL": url}).status_code


def test_reg_deleting_a_protected_site_takes_hosts_visits_and_allowed_users(app, admin_client, runner, make_user):
    """From the admin screen and from the CLI: the site's hosts are free again, its visits and allowed users go
    with it, and a new site on the same host is a new id whose first visit is audited anew."""
    make_user("bob")
    _provider(app, "moh")
    with app.app_context():
        screen, _ = clients.create("Reports", forward_auth=True, hosts=["reports.example", "r2.example"],
                                   all_users=False, providers=["moh"], actor="test")
        scripted, _ = clients.create("Stats", forward_auth=True, hosts=["stats.example"], all_users=False,
                                     actor="test")
        for site in (screen, scripted):
            clients.allow(site, [User.by_username("bob")], actor="test")
        screen_id, scripted_id = screen.id, scripted.id
    bob = app.test_client()
    AuthActions(bob).login("bob")
    assert _visits(app, bob, "http://stats.example/") == 200
    assert _visits(app, bob, "http://reports.example/") == 403  # bob logged in by password; moh only
    models = (ApplicationHost, ForwardAuthVisit, ApplicationUser, ApplicationProvider)
    assert [_rows(app, model, application_id=screen_id) for model in models] == [2, 1, 1, 1]

    page = admin_client.get(f"/admin/apps/{screen_id}/delete")
    assert admin_client.post(f"/admin/apps/{screen_id}/delete",
                             data={"csrf_token": csrf_from(page)}).status_code == 302
    for model in models:
        assert _rows(app, model, application_id=screen_id) == 0, model.__name__
    assert _rows(app, ForwardAuthVisit, application_id=scripted_id) == 1  # the other site keeps its own
    assert _visits(app, bob, "http://reports.example/") == 403  # no longer a protected site: refused
    assert _visits(app, bob, "http://stats.example/") == 200

    result = runner.invoke(args=["apps", "remove", "Stats", "--yes"])
    assert result.exit_code == 0, result.output
    for model in (Application, *models):
        assert _rows(app, model) == 0, model.__name__
    assert _user_id(app, "bob") is not None and _rows(app, UserSession) >= 2

    with app.app_context():
        again, _ = clients.create("Stats", forward_auth=True, hosts=["stats.example"], actor="test")
        assert again.id > scripted_id and clients.as_dict(again)["allowed_users"] == []
        again_id = again.id
    assert _visits(app, bob, "http://stats.example/") == 200
    assert _rows(app, ForwardAuthVisit, application_id=again_id) == 1


def test_reg_deleting_a_group_takes_members_mappings_and_the_access_it_gave(app, admin_client, runner, make_user):
    """From the admin screen and from the CLI: members, mappings and the provider and application access go;
    the users, the provider and the application stay, and a new group of the same name inherits nothing."""
    make_user("bob")
    moh = _provider(app, "moh")
    _bind(app, "bob", moh, "bobUid00001")
    with app.app_context():
        bob = User.by_username("bob")
        application, _ = clients.create("Superset", ["https://app.example.org/cb"], all_users=False, actor="test")
        ids = []
        for name in ("Malaria", "HIV"):
            group = groups.create(name, actor="test")
            groups.add_members(group, [bob], actor="test")
            groups.add_mapping(group, db.session.get(IdentityProvider, moh), "wl5cDMuUhmF", actor="test")
            db.session.add(ProviderGroup(provider_id=moh, group_id=group.id, purpose="access"))
            db.session.add(ApplicationGroup(application_id=application.id, group_id=group.id))
            db.session.commit()
            ids.append(group.id)
        application_id = application.id
    models = (GroupMember, GroupMapping, ProviderGroup, ApplicationGroup)
    assert [_rows(app, model, group_id=ids[0]) for model in models] == [1, 1, 1, 1]

    page = admin_client.get(f"/admin/groups/{ids[0]}/delete")
    assert admin_client.post(f"/admin/groups/{ids[0]}/delete", data={"csrf_token": csrf_from(page)}).status_code == 302
    for model in models:
        assert _rows(app, model, group_id=ids[0]) == 0, model.__name__
    assert _rows(app, GroupMember, group_id=ids[1]) == 1  # the other group keeps its own

    result = runner.invoke(args=["groups", "remove", "HIV", "--yes"])
    assert result.exit_code == 0, result.output
    for model in (Group, *models):
        assert _rows(app, model) == 0, model.__name__
    assert _rows(app, IdentityProvider, id=moh) == 1 and _rows(app, Application, id=application_id) == 1
    assert _rows(app, ExternalIdentity, provider_id=moh) == 1

    with app.app_context():
        again = groups.create("Malaria", actor="test")
        assert again.id > ids[1] and groups.member_ids(again) == set()


def test_reg_saving_provider_checkboxes_after_the_provider_was_deleted(app, admin_client, make_user):
    make_user("bob")
    bob_id = _user_id(app, "bob")
    moh = _provider(app, "moh", allow=["bob"])
    other = _provider(app, "other")
    page = admin_client.get(f"/admin/users/{bob_id}")  # the admin opens bob's screen...
    with app.app_context():  # ...another admin deletes moh meanwhile...
        instances.delete_provider(db.session.get(IdentityProvider, moh), actor="test")
    # ...and the first admin saves the checkboxes as they were (moh ticked, its id now unknown).
    response = admin_client.post(f"/admin/users/{bob_id}/providers",
                                 data={"csrf_token": csrf_from(page), "provider_ids": [str(moh), str(other)]})
    assert response.status_code == 400
    assert "no longer exists" in response.get_data(as_text=True)
    assert _rows(app, UserProviderPermission, user_id=bob_id) == 0
    # Unticking everything saves fine (no permission left behind for the deleted provider).
    response = admin_client.post(f"/admin/users/{bob_id}/providers", data={"csrf_token": csrf_from(page)})
    assert response.status_code == 302


@pytest.fixture
def empty_database(tmp_path):
    """A new, empty database of the kind the tests run on."""
    from tests.conftest import TEST_DB, extra_postgres_database
    if TEST_DB == "postgresql":
        with extra_postgres_database() as url:
            yield url
    else:
        yield "sqlite:///" + str(tmp_path / "upgrade.sqlite3")


def test_reg_migration_0005_keeps_data_drops_orphans_and_never_reuses_ids(empty_database, tmp_path):
    """An existing database (at 0004, rows left behind by deletes that never cascaded) upgrades: every row
    that still has its parents is kept with its id, the orphans go, and deleted ids are never given again."""
    import flask_migrate
    from geologin import create_app
    from tests.conftest import make_config
    app = create_app(make_config(empty_database, tmp_path / "instance"))
    now = utcnow()
    with app.app_context():
        flask_migrate.upgrade(revision="0004")
        with db.engine.connect() as connection:
            sqlite = connection.dialect.name == "sqlite"
            if sqlite:  # what every geologin database before 0005 was: foreign keys not enforced
                connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            users_at_0004 = table_named("users", *(column(name) for name in (
                "id", "username", "display_name", "is_admin", "active", "password_login_allowed", "created_at",
                "updated_at")))
            connection.execute(insert(users_at_0004), [
                {"id": 1, "username": "alice", "display_name": "", "is_admin": True, "active": True,
                 "password_login_allowed": True, "created_at": now, "updated_at": now},
                {"id": 3, "username": "bob", "display_name": "", "is_admin": False, "active": True,
                 "password_login_allowed": True, "created_at": now, "updated_at": now}])
            providers_at_0004 = table_named("provider_instances", *(column(name) for name in (
                "id", "slug", "type", "label", "description", "enabled", "position", "allow_all_users",
                "settings_json", "secrets_json", "created_at", "updated_at")))
            connection.execute(insert(providers_at_0004), [
                {"id": 1, "slug": "moh", "type": "dhis2", "label": "MOH", "description": "", "enabled": True,
                 "position": 1, "allow_all_users": False, "settings_json": "{}", "secrets_json": "{}",
                 "created_at": now, "updated_at": now}])
            sessions = [{"id": f"{n}" * 64, "user_id": user_id, "created_at": now, "last_seen_at": now,
                         "auth_method": "password"} for n, user_id in ((1, 1), (2, 3), (3, 2))]
            permissions = [{"user_id": 3, "provider_id": 1, "created_at": now}]
            identities = [{"id": 1, "user_id": 3, "provider_id": 1, "subject": "bobUid", "subject_scheme": "sub",
                           "first_login_at": now, "last_login_at": now}]
            if sqlite:  # left behind by a deleted user 2 and a deleted provider 2
                permissions += [{"user_id": 2, "provider_id": 1, "created_at": now},
                                {"user_id": 1, "provider_id": 2, "created_at": now}]
                identities += [{"id": 2, "user_id": 2, "provider_id": 1, "subject": "gone", "subject_scheme": "sub",
                                "first_login_at": now, "last_login_at": now},
                               {"id": 3, "user_id": 1, "provider_id": 2, "subject": "gone2",
                                "subject_scheme": "sub", "first_login_at": now, "last_login_at": now}]
                connection.execute(insert(LoginTransaction.__table__).values(
                    id="t" * 64, provider_id=2, browser_hash="b", nonce="n", code_verifier="v", redirect_uri="r",
                    data_json="{}", created_at=now))
            else:
                sessions = sessions[:2]
            connection.execute(insert(UserSession.__table__), sessions)
            connection.execute(insert(UserProviderPermission.__table__), permissions)
            connection.execute(insert(ExternalIdentity.__table__), identities)
            if not sqlite:  # as if the rows had come from the sequences
                for table in ("users", "provider_instances", "external_identities"):
                    connection.exec_driver_sql(f"SELECT setval('{table}_id_seq', (SELECT max(id) FROM {table}))")
            connection.commit()
        flask_migrate.upgrade()

        assert [(u.id, u.username) for u in db.session.scalars(select(User).order_by(User.id))] == [
            (1, "alice"), (3, "bob")]
        subjects = list(db.session.scalars(select(User.subject)))  # 0008 gave each existing user their own
        assert len(set(subjects)) == 2 and all(len(subject) == 36 for subject in subjects)
        assert sorted(db.session.scalars(select(UserSession.user_id))) == [1, 3]
        assert db.session.execute(select(UserProviderPermission.user_id, UserProviderPermission.provider_id)
                                  ).all() == [(3, 1)]
        assert db.session.execute(select(ExternalIdentity.id, ExternalIdentity.subject)).all() == [(1, "bobUid")]
        assert db.session.scalar(select(func.count()).select_from(LoginTransaction)) == 0
        if db.engine.dialect.name == "sqlite":
            assert db.session.execute(text("PRAGMA foreign_key_check")).all() == []
            assert db.session.execute(text("PRAGMA foreign_keys")).scalar() == 1

        # The highest user is deleted: the next user gets a new id, not 3, and inherits nothing.
        from geologin.accounts import users
        users.delete_user(db.session.get(User, 3), actor="test")
        carol = users.create_user("carol", actor="test")
        assert carol.id > 3
        assert db.session.scalar(select(func.count()).select_from(UserProviderPermission)) == 0
        # The provider triggers of 0004 survive the rebuild: a change to a provider changes the cache token.
        before = db.session.execute(text("SELECT token FROM cache_versions WHERE name = 'providers'")).scalar()
        db.session.get(IdentityProvider, 1).label = "Ministry"
        db.session.commit()
        after = db.session.execute(text("SELECT token FROM cache_versions WHERE name = 'providers'")).scalar()
        assert before and after and before != after
        db.session.remove()
        db.engine.dispose()
