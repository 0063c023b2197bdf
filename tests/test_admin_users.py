"""Admin user management screens (issue 3, checklist items 28, 32, 42)."""
import pytest
from sqlalchemy import func, select

from tests.conftest import STRONG_PASSWORD, AuthActions, csrf_from, post_form
from geologin.extensions import db
from geologin.models import AuditEvent, User


def _user(app, username):
    with app.app_context():
        user = User.by_username(username)
        if user is not None:
            db.session.expunge(user)
        return user


def _user_id(app, username):
    return _user(app, username).id


def _user_count(app):
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(User))


def _every_admin_rule(app):
    """Every rule of the admin blueprint, nested blueprints (admin.providers.*) included."""
    return [rule for rule in app.url_map.iter_rules() if rule.endpoint.startswith("admin.")]


@pytest.fixture
def admin_objects(app, make_user):
    """Objects to fill every admin URL with: a user, an identity provider, an application and a protected site
    the walk must not change (``site_id``: walk the application routes again with the site)."""
    from geologin import idp as instances
    from geologin.apps import clients
    from geologin.groups import service as group_service

    target = make_user("target")
    with app.app_context():
        instance = instances.create_provider(
            "dhis2", slug="walk", label="Walk", settings={"base_url": "https://dhis2.example.org/",
                                                          "client_id": "geologin"},
            secrets={"client_secret": "walk-secret-0123456789"}, actor="test")
        application, _ = clients.create("Walk", ["https://app.example.org/cb"], actor="test")
        site, _ = clients.create("Walk site", forward_auth=True, hosts=["walk.example.org"], actor="test")
        group = group_service.create("Walk group", actor="test")
        mapping = group_service.add_mapping(group, instance, "walk-ext", actor="test")
        return {"user_id": target, "slug": instance.slug, "provider_id": instance.id, "name": "bcrypt",
                "app_id": application.id, "secret_hash": application.secret_hash, "site_id": site.id,
                "group_id": group.id, "mapping_id": mapping.id}


def _both_walks(app, objects):
    """The route walk twice: once with the OpenID Connect client, once with the protected site."""
    site = objects | {"app_id": objects["site_id"]}
    return _admin_requests(app, objects) + _admin_requests(app, site)


def _admin_requests(app, values):
    """(method, url) for every method of every admin rule, the rule's arguments taken from ``values``."""
    from flask import url_for

    requests = []
    with app.test_request_context():
        for rule in _every_admin_rule(app):
            missing = rule.arguments - set(values)
            assert not missing, f"the route walk has no value for {sorted(missing)} in {rule.rule}"
            url = url_for(rule.endpoint, **{arg: values[arg] for arg in rule.arguments})
            requests += [(rule.endpoint, method, url) for method in sorted(rule.methods - {"HEAD", "OPTIONS"})]
    return requests


def _unchanged(app, objects):
    from geologin.apps import clients
    from geologin.models import Application, Group, GroupMapping, GroupMember, IdentityProvider

    with app.app_context():
        group = db.session.get(Group, objects["group_id"])
        if group is None or group.name != "Walk group" or db.session.get(GroupMapping, objects["mapping_id"]) is None \
                or db.session.scalar(select(func.count()).select_from(GroupMember)):
            return False
        instance = IdentityProvider.by_slug(objects["slug"])
        application = db.session.get(Application, objects["app_id"])
        site = db.session.get(Application, objects["site_id"])
        return (_user(app, "target").active and instance is not None and instance.enabled
                and instance.label == "Walk" and application is not None and application.name == "Walk"
                and application.secret_hash == objects["secret_hash"] and application.allowed_users == []
                and site is not None and site.name == "Walk site" and site.allowed_users == []
                and clients.host_names(site) == ["walk.example.org"])


def test_sec_42_route_walk_covers_every_admin_rule(app, admin_objects):
    """Every URL under /admin belongs to the admin blueprint (so require_admin guards it), and the walk
    below requests every method of every one of them, nested blueprints included."""
    under_admin = {rule.rule for rule in app.url_map.iter_rules() if rule.rule.startswith("/admin")}
    assert under_admin == {rule.rule for rule in _every_admin_rule(app)}
    walked = {(endpoint, method) for endpoint, method, _ in _admin_requests(app, admin_objects)}
    expected = {(rule.endpoint, method) for rule in _every_admin_rule(app)
                for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert walked == expected
    assert any(endpoint.startswith("admin.providers.") for endpoint, _ in walked)


def test_sec_42_anonymous_gets_login_redirect_on_every_admin_url(app, client, admin_objects):
    token = csrf_from(client.get("/login"))  # a valid token, so CSRF is not what stops the request
    for _, method, url in _both_walks(app, admin_objects):
        response = client.open(url, method=method, data={"csrf_token": token, "username": "x", "direction": "up",
                                                          "usernames": "target", "hosts": "x.example"})
        assert response.status_code == 302, (method, url)
        assert response.headers["Location"].startswith("/login?next="), (method, url)
    assert _unchanged(app, admin_objects)


def test_sec_42_non_admin_gets_403_on_every_admin_url(app, client, auth, make_user, admin_objects):
    make_user("plain")
    auth.login("plain")
    token = csrf_from(client.get("/account/password"))
    for _, method, url in _both_walks(app, admin_objects):
        response = client.open(url, method=method, data={"csrf_token": token, "username": "x",
                                                          "password": STRONG_PASSWORD, "direction": "up",
                                                          "usernames": "plain", "hosts": "x.example"})
        assert response.status_code == 403, (method, url)
    assert _unchanged(app, admin_objects) and _user_count(app) == 2


def test_users_list_search_and_pagination(app, admin_client, make_user):
    app.config["USERS_PER_PAGE"] = 3
    for name in ["amina", "bakary", "chipo", "dawit", "esi"]:
        make_user(name, password=None, display_name=name.title() + " Health")
    html = admin_client.get("/admin/users").get_data(as_text=True)
    assert "6 users" in html and "Page 1 of 2" in html and "amina" in html and "esi" not in html
    html = admin_client.get("/admin/users?page=2").get_data(as_text=True)
    assert "esi" in html and "root" in html and "amina" not in html
    html = admin_client.get("/admin/users?q=CHIP").get_data(as_text=True)
    assert "1 user" in html and "chipo" in html and "dawit" not in html
    html = admin_client.get("/admin/users?q=%25").get_data(as_text=True)  # a literal %, not a wildcard
    assert "No user matches." in html
    assert admin_client.get("/admin/users?page=99").status_code == 200
    assert admin_client.get("/admin/users?page=abc").status_code == 200


def test_create_user(app, admin_client):
    response = post_form(admin_client, "/admin/users/new", {
        "username": "fatou", "display_name": "Fatou Ndiaye", "email": "fatou@example.org",
        "password": "Long-enough-pass-7", "confirm": "Long-enough-pass-7", "password_login_allowed": "y"})
    assert response.status_code == 302
    user = _user(app, "fatou")
    assert user.display_name == "Fatou Ndiaye" and user.email == "fatou@example.org"
    assert not user.is_admin and user.password_login_allowed and user.has_password
    assert AuthActions(app.test_client()).login("fatou", "Long-enough-pass-7").status_code == 302


def test_create_user_without_password(app, admin_client):
    response = post_form(admin_client, "/admin/users/new", {"username": "dhis2only"})
    assert response.status_code == 302
    assert not _user(app, "dhis2only").has_password


@pytest.mark.parametrize("data, field, message", [
    ({"username": ""}, "username", "Enter a username."),
    ({"username": "has space"}, "username", "no spaces"),
    ({"username": "x" * 151}, "username", "at most 150"),
    ({"username": "root"}, "username", "already exists"),
    ({"username": "ok", "email": "not-an-email"}, "email", "valid email"),
    ({"username": "ok", "password": "short", "confirm": "short"}, "password", "at least 12"),
    ({"username": "ok", "password": "password1234", "confirm": "password1234"}, "password", "too common"),
    ({"username": "ok", "password": "Long-enough-pass-7", "confirm": "Other-pass-77777"}, "confirm", "differ"),
])
def test_create_user_bad_input_changes_nothing(app, admin_client, data, field, message):
    before = _user_count(app)
    response = post_form(admin_client, "/admin/users/new", data)
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    error_block = html.split(f'id="{field}-error"', 1)[1].split("</ul>", 1)[0]
    assert message in error_block
    assert _user_count(app) == before


def test_edit_user(app, admin_client, make_user):
    uid = make_user("amina")
    response = post_form(admin_client, f"/admin/users/{uid}", {
        "display_name": "Amina D.", "email": "amina@example.org", "active": "y"})
    assert response.status_code == 302
    user = _user(app, "amina")
    assert (user.display_name, user.email, user.is_admin, user.active, user.password_login_allowed) == \
        ("Amina D.", "amina@example.org", False, True, False)


def test_edit_user_bad_email_changes_nothing(app, admin_client, make_user):
    uid = make_user("amina", display_name="Amina")
    response = post_form(admin_client, f"/admin/users/{uid}", {
        "display_name": "Changed", "email": "nope", "active": "y", "is_admin": "y"})
    assert response.status_code == 400
    assert "valid email" in response.get_data(as_text=True)
    user = _user(app, "amina")
    assert user.display_name == "Amina" and not user.is_admin


def test_sec_28_deactivating_ends_sessions(app, admin_client, make_user):
    uid = make_user("amina")
    amina = app.test_client()
    AuthActions(amina).login("amina")
    assert amina.get("/").status_code == 200
    response = post_form(admin_client, f"/admin/users/{uid}/deactivate", {}, page=f"/admin/users/{uid}")
    assert response.status_code == 302
    assert amina.get("/").status_code == 302
    assert AuthActions(app.test_client()).login("amina").status_code == 400
    post_form(admin_client, f"/admin/users/{uid}/activate", {}, page=f"/admin/users/{uid}")
    assert AuthActions(app.test_client()).login("amina").status_code == 302


def test_sec_28_removing_admin_role_ends_sessions(app, admin_client, make_user):
    uid = make_user("deputy", is_admin=True)
    deputy = app.test_client()
    AuthActions(deputy).login("deputy")
    assert deputy.get("/admin/users").status_code == 200
    post_form(admin_client, f"/admin/users/{uid}", {"active": "y", "password_login_allowed": "y"})
    assert deputy.get("/admin/users").status_code == 302


def test_admin_sets_password_and_ends_sessions(app, admin_client, make_user):
    uid = make_user("amina")
    amina = app.test_client()
    AuthActions(amina).login("amina")
    response = post_form(admin_client, f"/admin/users/{uid}/password",
                         {"password": "Brand-new-secret-42", "confirm": "Brand-new-secret-42"})
    assert response.status_code == 302
    assert amina.get("/").status_code == 302
    assert AuthActions(app.test_client()).login("amina", "Brand-new-secret-42").status_code == 302


def test_admin_set_password_bad_input_changes_nothing(app, admin_client, make_user):
    uid = make_user("amina")
    response = post_form(admin_client, f"/admin/users/{uid}/password", {"password": "amina", "confirm": "amina"})
    assert response.status_code == 400
    assert AuthActions(app.test_client()).login("amina").status_code == 302


def test_delete_needs_confirmation(app, admin_client, make_user):
    uid = make_user("amina")
    page = admin_client.get(f"/admin/users/{uid}/delete")
    assert "Delete amina?" in page.get_data(as_text=True)
    assert _user(app, "amina") is not None
    response = admin_client.post(f"/admin/users/{uid}/delete", data={"csrf_token": csrf_from(page)})
    assert response.status_code == 302
    assert _user(app, "amina") is None
    assert admin_client.get(f"/admin/users/{uid}").status_code == 404


def test_sec_32_admin_posts_without_csrf_change_nothing(app, admin_client, make_user):
    uid = make_user("amina")
    for url, data in [(f"/admin/users/{uid}/delete", {}), (f"/admin/users/{uid}/deactivate", {}),
                      ("/admin/users/new", {"username": "sneaky"}),
                      (f"/admin/users/{uid}", {"is_admin": "y", "active": "y"}),
                      (f"/admin/users/{uid}/password", {"password": "Sneaky-pass-123", "confirm": "Sneaky-pass-123"})]:
        assert admin_client.post(url, data=data).status_code == 400, url
        assert admin_client.post(url, data={**data, "csrf_token": "wrong"}).status_code == 400, url
    user = _user(app, "amina")
    assert user.active and not user.is_admin and _user(app, "sneaky") is None
    assert AuthActions(app.test_client()).login("amina").status_code == 302


def test_last_admin_cannot_be_removed(app, admin_client):
    uid = _user_id(app, "root")
    response = post_form(admin_client, f"/admin/users/{uid}", {"active": "y", "password_login_allowed": "y"})
    assert response.status_code == 400
    assert "last active administrator" in response.get_data(as_text=True)
    post_form(admin_client, f"/admin/users/{uid}/deactivate", {}, page=f"/admin/users/{uid}")
    post_form(admin_client, f"/admin/users/{uid}/delete", {})
    user = _user(app, "root")
    assert user.is_admin and user.active


def test_unknown_user_id_is_404(admin_client):
    assert admin_client.get("/admin/users/999999").status_code == 404
    assert post_form(admin_client, "/admin/users/999999/delete", {}, page="/admin/users").status_code == 404


def test_admin_changes_are_audited(app, admin_client, make_user):
    uid = make_user("amina")
    post_form(admin_client, f"/admin/users/{uid}", {"display_name": "A", "active": "y"})
    post_form(admin_client, f"/admin/users/{uid}/deactivate", {}, page=f"/admin/users/{uid}")
    post_form(admin_client, f"/admin/users/{uid}/password", {"password": "Brand-new-secret-42",
                                                             "confirm": "Brand-new-secret-42"})
    post_form(admin_client, f"/admin/users/{uid}/delete", {})
    with app.app_context():
        events = db.session.scalars(select(AuditEvent).where(AuditEvent.actor == "root",
                                                             AuditEvent.target == "amina")
                                    .order_by(AuditEvent.id)).all()
        assert [e.event_type for e in events] == ["user.update", "user.deactivate", "user.password_set",
                                                  "user.delete"]
        assert "password_login_allowed" in events[0].detail
        assert all("Brand-new" not in (e.detail or "") for e in events)


def test_admin_pages_not_cached(admin_client):
    assert admin_client.get("/admin/users").headers["Cache-Control"] == "no-store"


def test_absurd_page_numbers_never_500(admin_client):
    for page in ["99999999999999999999999", "-5", "0", "abc"]:
        assert admin_client.get(f"/admin/users?page={page}").status_code == 200


def _user_screen(app, admin_client, username):
    from geologin.models import User
    with app.app_context():
        user_id = User.by_username(username).id
    return admin_client.get(f"/admin/users/{user_id}").get_data(as_text=True)


def test_reg_user_screen_says_what_password_login_really_allows(app, admin_client, make_user):
    """"Password: none" beside a ticked "Password login allowed" read as a contradiction."""
    make_user("nopass", password=None)
    page = _user_screen(app, admin_client, "nopass")
    assert "Not set: this user cannot log in with a password until one is set." in page
    assert ">none<" not in page
    make_user("external", password=None, password_login_allowed=False)
    assert "None: this user logs in through identity providers only." in _user_screen(app, admin_client, "external")
    make_user("withpass")
    assert ">Set<" in _user_screen(app, admin_client, "withpass")
    make_user("blocked", password_login_allowed=False)
    assert "Set, but password login is not allowed for this user." in _user_screen(app, admin_client, "blocked")
