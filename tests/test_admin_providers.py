"""Admin screens for identity-provider instances and per-user permissions (issue 4)."""
import json
import re

import bcrypt
import pytest
from sqlalchemy import func, select

from geologin import idp as instances
from geologin.accounts import users
from geologin.extensions import db
from geologin.models import AuditEvent, ExternalIdentity, IdentityProvider, User, UserProviderPermission, utcnow
from tests.conftest import STRONG_PASSWORD, AuthActions, csrf_from, post_form

SECRET = "Zq8-not-shown-anywhere-0123456789abcd"
NEW_SECRET = "Yp7-another-secret-value-9876543210zy"


def _form(**changes):
    data = {"slug": "moh", "label": "Ministry of Health DHIS2", "description": "National server",
            "enabled": "y", "setting_base_url": "https://dhis2.example.org", "setting_client_id": "geologin",
            "setting_client_secret": SECRET, "setting_generation": "auto", "setting_redirect_uri": "",
            "enable_untested": "y"}  # no DHIS2 answers at dhis2.example.org: enable explicitly
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def _edit_form(**changes):
    data = _form(**{"setting_client_secret": "", **changes})
    data.pop("slug", None)
    return data


def _create(app, slug="moh", label=None, base_url="https://dhis2.example.org", **kwargs):
    with app.app_context():
        instance = instances.create_provider(
            "dhis2", slug=slug, label=label or slug.upper(), settings={"base_url": base_url, "client_id": "geologin"},
            secrets={"client_secret": SECRET}, actor="test", **kwargs)
        return instance.id


def _instance(app, slug):
    with app.app_context():
        instance = IdentityProvider.by_slug(slug)
        if instance is not None:
            db.session.expunge(instance)
        return instance


def _secret(app, slug):
    with app.app_context():
        return instances.plugin_object(IdentityProvider.by_slug(slug)).secret("client_secret")


def _count(app, model=IdentityProvider):
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def _allowed(app, slug):
    with app.app_context():
        return [u.username for u in instances.allowed_users(IdentityProvider.by_slug(slug))]


def _events(app, event_type):
    with app.app_context():
        return [(e.actor, e.target, e.provider, e.outcome, e.detail) for e in db.session.scalars(
            select(AuditEvent).where(AuditEvent.event_type == event_type).order_by(AuditEvent.id))]


def _error_block(html, field):
    assert f'id="{field}-error"' in html, f"no error shown next to {field}"
    return html.split(f'id="{field}-error"', 1)[1].split("</ul>", 1)[0]


def _admin_client(app):
    with app.app_context():
        users.create_user("root", password=STRONG_PASSWORD, is_admin=True, actor="test")
    client = app.test_client()
    assert AuthActions(client).login("root").status_code == 302
    return client


@pytest.fixture
def insecure_app(app_factory):
    return app_factory(ALLOW_INSECURE_HTTP=True)


# -- list, add, edit, delete, reorder --------------------------------------------------------------------
def test_add_provider_then_setup_page(app, admin_client):
    html = admin_client.get("/admin/providers").get_data(as_text=True)
    assert "No identity provider yet" in html and 'href="/admin/providers/new"' in html
    html = admin_client.get("/admin/providers/new").get_data(as_text=True)
    assert 'href="/admin/providers/new?type=dhis2"' in html and "DHIS2" in html
    page = admin_client.get("/admin/providers/new?type=dhis2")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Part of the redirect URI; cannot be changed later" in html
    assert "http://localhost/auth/" in html and "/callback" in html
    for name in ("slug", "label", "description", "enabled", "allow_all_users", "setting_base_url",
                 "setting_client_id", "setting_client_secret", "setting_generation", "setting_redirect_uri"):
        assert f'name="{name}"' in html, name
    assert re.search(r'<input[^>]*checked[^>]*name="enabled"|<input[^>]*name="enabled"[^>]*checked', html)
    assert not re.search(r'<input[^>]*name="allow_all_users"[^>]*checked', html)

    response = post_form(admin_client, "/admin/providers/new?type=dhis2", _form())
    assert response.status_code == 302 and response.headers["Location"] == "/admin/providers/moh/setup"
    instance = _instance(app, "moh")
    assert (instance.type, instance.label, instance.description, instance.enabled, instance.allow_all_users) == \
        ("dhis2", "Ministry of Health DHIS2", "National server", True, False)
    assert json.loads(instance.settings_json)["base_url"] == "https://dhis2.example.org/"
    assert _secret(app, "moh") == SECRET
    assert [e[:3] for e in _events(app, "provider.create")] == [("root", "moh", "moh")]

    html = admin_client.get("/admin/providers/moh/setup").get_data(as_text=True)
    assert "http://localhost/auth/moh/callback" in html
    for value in ("OAuth2 Clients", "Authorization code only", "geologin", "authorization_code",
                  "openid,username", "client_secret_basic", "Compute the bcrypt hash", "Test connection",
                  "must match exactly", "36-character"):
        assert value in html, value
    html = admin_client.get("/admin/providers").get_data(as_text=True)
    assert "Ministry of Health DHIS2" in html and "<code>moh</code>" in html and "0 allowed users" in html
    assert "enabled" in html and 'href="/admin/providers/moh/edit"' in html


def test_new_provider_of_unknown_type_is_404(admin_client):
    assert admin_client.get("/admin/providers/new?type=nope").status_code == 404


def test_new_provider_form_warns_without_public_url(app_factory):
    app = app_factory(PUBLIC_URL=None)
    client = _admin_client(app)
    html = client.get("/admin/providers/new?type=dhis2").get_data(as_text=True)
    assert "GEOLOGIN_PUBLIC_URL is not set" in html


@pytest.mark.parametrize("changes, field, message", [
    ({"slug": "Bad Slug"}, "slug", "lowercase letters, digits and dashes"),
    ({"slug": ""}, "slug", "lowercase letters, digits and dashes"),
    ({"slug": "taken"}, "slug", "Another identity provider already uses taken"),
    ({"label": ""}, "label", "Enter the label"),
    ({"label": "x" * 121}, "label", "at most 120"),
    ({"setting_base_url": "http://dhis2.example.org"}, "setting_base_url", "Use https://"),
    ({"setting_base_url": "dhis2.example.org"}, "setting_base_url", "Enter a full URL"),
    ({"setting_base_url": ""}, "setting_base_url", "This setting is required."),
    ({"setting_client_secret": ""}, "setting_client_secret", "This setting is required."),
    ({"setting_redirect_uri": "https://evil.example.org/cb"}, "setting_redirect_uri",
     "Use this provider&#39;s own callback URL"),
    ({"setting_generation": "v3"}, "setting_generation", "Not a valid choice"),
])
def test_new_provider_bad_input_changes_nothing(app, admin_client, changes, field, message):
    _create(app, "taken")
    response = post_form(admin_client, "/admin/providers/new?type=dhis2", _form(**changes))
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert message in _error_block(html, field)
    assert _count(app) == 1 and _instance(app, "moh") is None
    assert SECRET not in html


def test_new_provider_reports_every_problem_at_once(app, admin_client):
    response = post_form(admin_client, "/admin/providers/new?type=dhis2",
                         _form(slug="", label="", setting_base_url="", setting_client_secret=""))
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    for field in ("slug", "label", "setting_base_url", "setting_client_secret"):
        _error_block(html, field)


def test_edit_with_empty_secret_keeps_the_old_one(app, admin_client):
    _create(app, "moh", label="Old label")
    html = admin_client.get("/admin/providers/moh/edit").get_data(as_text=True)
    assert 'name="slug"' not in html and "<code>moh</code>" in html
    assert "A secret is stored; leave empty to keep it." in html
    assert 'value="Old label"' in html and 'value="https://dhis2.example.org/"' in html
    response = post_form(admin_client, "/admin/providers/moh/edit", _edit_form(label="New label", description=""))
    assert response.status_code == 302
    assert _instance(app, "moh").label == "New label"
    assert _secret(app, "moh") == SECRET
    response = post_form(admin_client, "/admin/providers/moh/edit",
                         _edit_form(label="New label", description="", setting_client_secret=NEW_SECRET))
    assert response.status_code == 302
    assert _secret(app, "moh") == NEW_SECRET
    details = [e[4] for e in _events(app, "provider.update")]
    assert details == ["changed: label", "changed: client_secret"]


@pytest.mark.parametrize("changes, field, message", [
    ({"label": " "}, "label", "Enter the label"),
    ({"setting_base_url": "http://dhis2.example.org"}, "setting_base_url", "Use https://"),
    ({"setting_client_id": ""}, "setting_client_id", "This setting is required."),
    ({"setting_redirect_uri": "https://localhost/elsewhere"}, "setting_redirect_uri", "own callback URL"),
])
def test_edit_bad_input_changes_nothing(app, admin_client, changes, field, message):
    _create(app, "moh", label="Old label")
    before = _instance(app, "moh")
    response = post_form(admin_client, "/admin/providers/moh/edit",
                         _edit_form(**{"label": "Changed", "setting_client_secret": NEW_SECRET, **changes}))
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert message in _error_block(html, field)
    after = _instance(app, "moh")
    assert (after.label, after.settings_json, after.secrets_json) == \
        (before.label, before.settings_json, before.secrets_json)
    assert NEW_SECRET not in html


def test_disable_and_enable_through_edit(app, admin_client):
    _create(app, "moh")
    assert post_form(admin_client, "/admin/providers/moh/edit", _edit_form(enabled=None)).status_code == 302
    assert not _instance(app, "moh").enabled
    html = admin_client.get("/admin/providers").get_data(as_text=True)
    assert "disabled" in html
    assert post_form(admin_client, "/admin/providers/moh/edit", _edit_form()).status_code == 302
    assert _instance(app, "moh").enabled


def test_reorder(app, admin_client):
    for slug in ("alpha", "bravo", "charlie"):
        _create(app, slug)

    def order():
        with app.app_context():
            return [i.slug for i in instances.ordered_providers()]

    def move(slug, direction):
        return post_form(admin_client, f"/admin/providers/{slug}/move", {"direction": direction},
                         page="/admin/providers")

    assert move("charlie", "up").status_code == 302
    assert order() == ["alpha", "charlie", "bravo"]
    move("alpha", "up")  # already first
    assert order() == ["alpha", "charlie", "bravo"]
    move("alpha", "down")
    assert order() == ["charlie", "alpha", "bravo"]
    assert move("bravo", "sideways").status_code == 400
    assert order() == ["charlie", "alpha", "bravo"]
    html = admin_client.get("/admin/providers").get_data(as_text=True)
    assert html.index("CHARLIE") < html.index("ALPHA") < html.index("BRAVO")
    assert html.count('value="up"') == 2 and html.count('value="down"') == 2


def test_delete_needs_confirmation(app, admin_client):
    _create(app, "moh")
    page = admin_client.get("/admin/providers/moh/delete")
    assert "Delete MOH?" in page.get_data(as_text=True)
    assert _instance(app, "moh") is not None
    response = admin_client.post("/admin/providers/moh/delete", data={"csrf_token": csrf_from(page)})
    assert response.status_code == 302 and response.headers["Location"] == "/admin/providers"
    assert _instance(app, "moh") is None
    assert [e[:2] for e in _events(app, "provider.delete")] == [("root", "moh")]
    assert admin_client.get("/admin/providers/moh/setup").status_code == 404


def test_unknown_slug_is_404(admin_client):
    for url in ("/admin/providers/nope/edit", "/admin/providers/nope/setup", "/admin/providers/nope/users",
                "/admin/providers/nope/delete"):
        assert admin_client.get(url).status_code == 404, url
    assert post_form(admin_client, "/admin/providers/nope/test", {}, page="/admin/providers").status_code == 404


def test_instance_whose_plugin_is_missing_is_listed_and_can_be_deleted(app, admin_client):
    with app.app_context():
        db.session.add(IdentityProvider(slug="gone", type="vanished", label="Gone server", position=1))
        db.session.commit()
    html = admin_client.get("/admin/providers").get_data(as_text=True)
    assert "Gone server" in html and "plugin not installed" in html
    response = admin_client.get("/admin/providers/gone/edit", follow_redirects=True)
    assert response.status_code == 200 and "is not installed" in response.get_data(as_text=True)
    assert admin_client.get("/admin/providers/gone/users").status_code == 200
    post_form(admin_client, "/admin/providers/gone/delete", {})
    assert _instance(app, "gone") is None


def test_broken_plugins_are_reported(app_factory, tmp_path):
    from geologin import ROOT

    broken = tmp_path / "extra" / "brokenplug"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("raise RuntimeError('plugin exploded on import')\n")
    app = app_factory(PLUGINS_FOLDER=[str(ROOT / "plugins"), str(tmp_path / "extra")])
    client = _admin_client(app)
    html = client.get("/admin/providers").get_data(as_text=True)
    assert "brokenplug" in html and "plugin exploded on import" in html
    assert "brokenplug" in client.get("/admin/providers/new").get_data(as_text=True)


# -- secrets ------------------------------------------------------------------------------------------------
def test_sec_44_secret_never_shown_in_admin_pages(app, admin_client, make_user):
    uid = make_user("amina")
    assert post_form(admin_client, "/admin/providers/new?type=dhis2", _form()).status_code == 302
    with app.app_context():
        instances.allow([db.session.get(User, uid)], IdentityProvider.by_slug("moh"))
    pages = [admin_client.get(url) for url in (
        "/admin/providers", "/admin/providers/new", "/admin/providers/new?type=dhis2", "/admin/providers/moh/edit",
        "/admin/providers/moh/setup", "/admin/providers/moh/users", "/admin/providers/moh/delete",
        f"/admin/users/{uid}")]
    pages.append(post_form(admin_client, "/admin/providers/moh/action/bcrypt", {},
                           page="/admin/providers/moh/setup"))
    pages.append(post_form(admin_client, "/admin/providers/moh/edit",
                           _edit_form(label="", setting_client_secret=SECRET)))
    pages.append(post_form(admin_client, "/admin/providers/new?type=dhis2", _form(slug="Bad")))
    assert [p.status_code for p in pages] == [200] * 9 + [400, 400]
    for page in pages:
        assert SECRET not in page.get_data(as_text=True)
    with app.app_context():
        row = IdentityProvider.by_slug("moh")
        assert SECRET not in row.secrets_json and SECRET not in row.settings_json
        assert set(json.loads(row.secrets_json)) == {"client_secret"}
        assert all(SECRET not in json.dumps(e.as_dict()) for e in db.session.scalars(select(AuditEvent)))


# -- who may use an instance ----------------------------------------------------------------------------
def test_user_screen_ticks_identity_providers(app, admin_client, make_user):
    uid = make_user("amina")
    a, b = _create(app, "alpha"), _create(app, "bravo", allow_all_users=True)
    html = admin_client.get(f"/admin/users/{uid}").get_data(as_text=True)
    assert "Identity providers" in html and f'id="provider-{a}"' in html and f'id="provider-{b}"' in html
    assert "Every active user may use this one anyway." in html
    url = f"/admin/users/{uid}/providers"
    assert post_form(admin_client, url, {"provider_ids": [a]}, page=f"/admin/users/{uid}").status_code == 302
    assert (_allowed(app, "alpha"), _allowed(app, "bravo")) == (["amina"], [])
    html = admin_client.get(f"/admin/users/{uid}").get_data(as_text=True)
    assert re.search(rf'value="{a}" id="provider-{a}" checked', html)
    post_form(admin_client, url, {"provider_ids": [b]}, page=f"/admin/users/{uid}")
    assert (_allowed(app, "alpha"), _allowed(app, "bravo")) == ([], ["amina"])
    post_form(admin_client, url, {}, page=f"/admin/users/{uid}")
    assert (_allowed(app, "alpha"), _allowed(app, "bravo")) == ([], [])
    response = post_form(admin_client, url, {"provider_ids": [a, 999999]}, page=f"/admin/users/{uid}")
    assert response.status_code == 400
    assert "no longer exists" in _error_block(response.get_data(as_text=True), "provider_ids")
    assert _allowed(app, "alpha") == []
    assert [e[3] for e in _events(app, "permission.grant")] == ["success", "success"]
    assert [(e[1], e[2]) for e in _events(app, "permission.revoke")] == [("amina", "alpha"), ("amina", "bravo")]


def test_bulk_allow_reports_unknown_names(app, admin_client, make_user):
    for name in ("amina", "bakary", "chipo"):
        make_user(name, password=None)
    _create(app, "moh")
    with app.app_context():
        instances.allow([User.by_username("chipo")], IdentityProvider.by_slug("moh"))
    response = post_form(admin_client, "/admin/providers/moh/users/allow",
                         {"usernames": "amina\r\n  bakary \n\nghost\nAmina\nchipo\namina\n"},
                         page="/admin/providers/moh/users", follow_redirects=True)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Allowed: 2 users." in html and "1 was already allowed." in html
    assert "Unknown, nothing done: ghost, Amina (2 names)." in html
    assert _allowed(app, "moh") == ["amina", "bakary", "chipo"]
    assert [e[1] for e in _events(app, "permission.grant")][-1] == "amina, bakary"


def test_bulk_allow_needs_names(app, admin_client):
    _create(app, "moh")
    response = post_form(admin_client, "/admin/providers/moh/users/allow", {"usernames": " \n \n"},
                         page="/admin/providers/moh/users")
    assert response.status_code == 400
    assert "Enter at least one username." in _error_block(response.get_data(as_text=True), "usernames")


def test_users_page_lists_searches_and_disallows(app, admin_client, make_user):
    app.config["USERS_PER_PAGE"] = 2
    ids = {name: make_user(name, password=None) for name in ("amina", "bakary", "chipo")}
    make_user("dawit", password=None)
    _create(app, "moh")
    with app.app_context():
        instances.allow([db.session.get(User, i) for i in ids.values()], IdentityProvider.by_slug("moh"))
    html = admin_client.get("/admin/providers/moh/users").get_data(as_text=True)
    assert "3 users" in html and "Page 1 of 2" in html and "amina" in html and "chipo" not in html
    assert "dawit" not in admin_client.get("/admin/providers/moh/users?page=2").get_data(as_text=True)
    html = admin_client.get("/admin/providers/moh/users?q=bak").get_data(as_text=True)
    assert "1 user" in html and "bakary" in html and "amina" not in html
    response = post_form(admin_client, "/admin/providers/moh/users/disallow",
                         {"user_ids": [ids["amina"], ids["chipo"]]}, page="/admin/providers/moh/users")
    assert response.status_code == 302
    assert _allowed(app, "moh") == ["bakary"]
    assert _events(app, "permission.revoke")[-1][1] == "amina, chipo"


def test_allow_every_active_user(app, admin_client, make_user):
    uid = make_user("amina")
    _create(app, "moh")
    assert post_form(admin_client, "/admin/providers/moh/edit", _edit_form(allow_all_users="y")).status_code == 302
    assert _instance(app, "moh").allow_all_users
    html = admin_client.get("/admin/providers/moh/users").get_data(as_text=True)
    assert "Every active local user may log in through Ministry of Health DHIS2" in html
    assert "every active user" in admin_client.get("/admin/providers").get_data(as_text=True)
    with app.app_context():
        assert instances.is_allowed(db.session.get(User, uid), IdentityProvider.by_slug("moh"))


def test_reg_admin_screens_say_every_active_user_never_covers_administrators(app, admin_client, make_user):
    chief = make_user("chief", is_admin=True)
    _create(app, "moh", allow_all_users=True)
    html = admin_client.get(f"/admin/users/{chief}").get_data(as_text=True)
    assert "does not cover administrators: tick it to let chief log in through it." in html
    assert "Every active user may use this one anyway." not in html
    html = admin_client.get("/admin/providers/moh/users").get_data(as_text=True)
    assert "Administrators must still be listed here" in html
    html = admin_client.get("/admin/providers/moh/edit").get_data(as_text=True)
    assert "Administrators must always be allowed one by one, even when it is on." in html
    with app.app_context():
        assert not instances.is_allowed(db.session.get(User, chief), IdentityProvider.by_slug("moh"))


def test_unlink_identity(app, admin_client, make_user):
    uid = make_user("amina")
    pid = _create(app, "moh", label="MoH DHIS2")
    with app.app_context():
        db.session.add(ExternalIdentity(user_id=uid, provider_id=pid, subject="xE7jOejl9FI",
                                        subject_scheme="dhis2-uid", external_username="amina",
                                        first_login_at=utcnow(), last_login_at=utcnow()))
        db.session.commit()
    html = admin_client.get(f"/admin/users/{uid}").get_data(as_text=True)
    assert "Linked accounts" in html and "xE7jOejl9FI" in html and "MoH DHIS2" in html and "Unlink" in html
    url = f"/admin/users/{uid}/identities/{pid}/unlink"
    response = post_form(admin_client, url, {}, page=f"/admin/users/{uid}")
    assert response.status_code == 302 and response.headers["Location"] == f"/admin/users/{uid}"
    assert _count(app, ExternalIdentity) == 0
    assert [e[:3] for e in _events(app, "identity.unlink")] == [("root", "amina", "moh")]
    html = admin_client.get(f"/admin/users/{uid}").get_data(as_text=True)
    assert "xE7jOejl9FI" not in html and "no longer linked" in html
    post_form(admin_client, url, {}, page=f"/admin/users/{uid}")
    assert len(_events(app, "identity.unlink")) == 1
    assert post_form(admin_client, f"/admin/users/{uid}/identities/999999/unlink", {},
                     page=f"/admin/users/{uid}").status_code == 404


# -- setup page: connection test and plugin actions ---------------------------------------------------------
def test_test_connection_to_an_unreachable_server(insecure_app):
    client = _admin_client(insecure_app)
    _create(insecure_app, "moh", base_url="http://127.0.0.1:9")
    response = post_form(client, "/admin/providers/moh/test", {}, page="/admin/providers/moh/setup")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    row = html.split("Server reachable", 1)[1].split("</tr>", 1)[0]
    assert "failed" in row and "127.0.0.1:9" in row
    assert [e[1:4] for e in _events(insecure_app, "provider.test")] == [("moh", "moh", "failure")]


def test_test_connection_never_fails_the_page(app, admin_client, monkeypatch):
    from geologin.encryption import SecretUnreadable
    from geologin.providers import ProviderError

    _create(app, "moh")
    with app.app_context():
        provider_class = instances.plugin_registry().get("dhis2")
    for error in (ProviderError("token endpoint said no"), SecretUnreadable("cannot decrypt"), KeyError("x")):
        def boom(self, error=error):
            raise error
        monkeypatch.setattr(provider_class, "test_connection", boom)
        response = post_form(admin_client, "/admin/providers/moh/test", {}, page="/admin/providers/moh/setup")
        assert response.status_code == 200
        assert "failed" in response.get_data(as_text=True)


def test_bcrypt_action_returns_a_hash_of_the_secret(app, admin_client):
    _create(app, "moh")
    response = post_form(admin_client, "/admin/providers/moh/action/bcrypt", {}, page="/admin/providers/moh/setup")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    hashes = set(re.findall(r"\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}", html))
    assert len(hashes) == 1
    assert bcrypt.checkpw(SECRET.encode(), hashes.pop().encode())
    assert [e[1:5] for e in _events(app, "provider.action")] == [("moh", "moh", "success", "action=bcrypt")]
    assert post_form(admin_client, "/admin/providers/moh/action/nope", {},
                     page="/admin/providers/moh/setup").status_code == 404


def test_provider_admin_posts_without_csrf_change_nothing(app, admin_client, make_user):
    uid = make_user("amina")
    _create(app, "moh")
    for url, data in [("/admin/providers/new?type=dhis2", _form(slug="sneaky")),
                      ("/admin/providers/moh/edit", _edit_form(label="Sneaky")),
                      ("/admin/providers/moh/delete", {}), ("/admin/providers/moh/move", {"direction": "up"}),
                      ("/admin/providers/moh/users/allow", {"usernames": "amina"}),
                      (f"/admin/users/{uid}/providers", {"provider_ids": [1]})]:
        assert admin_client.post(url, data=data).status_code == 400, url
    assert _instance(app, "moh").label == "MOH" and _instance(app, "sneaky") is None
    assert _allowed(app, "moh") == [] and _count(app, UserProviderPermission) == 0


def test_test_connection_to_a_working_server(app_factory):
    from tests.fakes import CALLBACK, SECRET as FAKE_SECRET, FakeServer

    server = FakeServer("--version", "2.42.0", "--client", f"geologin:{FAKE_SECRET}:{CALLBACK}")
    try:
        app = app_factory(ALLOW_INSECURE_HTTP=True, PUBLIC_URL=CALLBACK.split("/auth/")[0])
        client = _admin_client(app)
        with app.app_context():
            instances.create_provider("dhis2", slug="dhis2", label="Fake", settings={"base_url": server.url},
                                      secrets={"client_secret": FAKE_SECRET}, actor="test")
        response = post_form(client, "/admin/providers/dhis2/test", {}, page="/admin/providers/dhis2/setup")
        html = response.get_data(as_text=True)
        assert response.status_code == 200
        results = html.split("<caption>", 1)[1].split("</table>", 1)[0]
        assert "failed" not in results and results.count('class="check-ok"') == 3
        assert "2.42" in results and "OpenID Connect" in results and "accepts the client ID and secret" in results
        assert FAKE_SECRET not in html
    finally:
        server.stop()
