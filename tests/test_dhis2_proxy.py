"""The read-only DHIS2 proxy (issue 19): GET /dhis2/<slug>/api/<path> for the logged-in person or for an
application's bearer token with the dhis2 scope, forwarded to the fake DHIS2 (both generations) with the
person's kept token; only the provider's allow-listed paths, never a write."""
import pytest
from sqlalchemy import select

from geologin import idp
from geologin.extensions import db
from geologin.models import IdentityProvider, KeptToken
from tests.test_dhis2_login import app, dhis2_servers, legacy, login_via_dhis2, oidc, register  # noqa: F401
from tests.test_kept_tokens import keep
from tests.test_token_exchange import application, dhis2, ready, sign_in  # noqa: F401

pytestmark = pytest.mark.usefixtures("dhis2_servers")


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def test_the_proxy_returns_api_me_for_the_logged_in_person(app, client, dhis2):
    slug, _ = dhis2
    login_via_dhis2(client, slug)
    response = client.get(f"/dhis2/{slug}/api/me?fields=username")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json() == {"username": "alice"}  # the query string went along
    assert response.mimetype == "application/json"
    cookies = " ".join(response.headers.getlist("Set-Cookie"))  # geologin's own session cookie only
    assert "JSESSIONID" not in cookies and "WWW-Authenticate" not in response.headers
    assert client.get(f"/dhis2/{slug}/api/system/info").get_json()["systemName"] == "DHIS 2 (fake)"


def test_the_proxy_returns_api_me_for_an_application_bearer_with_the_dhis2_scope(app, client, dhis2):
    slug, _ = dhis2
    login_via_dhis2(client, slug)
    client_id, secret = application(app, token_providers=[slug])
    token = sign_in(client, client_id, secret, scope="openid dhis2")
    anonymous = app.test_client()
    response = anonymous.get(f"/dhis2/{slug}/api/me", headers=bearer(token))
    assert response.status_code == 200 and response.get_json()["username"] == "alice"


def test_the_proxy_refuses_a_bearer_without_the_dhis2_scope(app, client, dhis2):
    slug, _ = dhis2
    _, _, token = ready(app, client, dhis2)  # scope openid profile
    response = app.test_client().get(f"/dhis2/{slug}/api/me", headers=bearer(token))
    assert response.status_code == 403 and response.get_json()["error"] == "insufficient_scope"


def test_the_proxy_refuses_an_application_not_allowed_for_that_provider(app, client, dhis2):
    slug, _ = dhis2
    login_via_dhis2(client, slug)
    client_id, secret = application(app)
    token = sign_in(client, client_id, secret, scope="openid dhis2")
    response = app.test_client().get(f"/dhis2/{slug}/api/me", headers=bearer(token))
    assert response.status_code == 403 and response.get_json()["error"] == "unauthorized_client"
    for wrong in ("not-a-token", ""):
        response = app.test_client().get(f"/dhis2/{slug}/api/me", headers=bearer(wrong))
        assert response.status_code == 401 and response.get_json()["error"] == "invalid_token"
    assert app.test_client().get(f"/dhis2/{slug}/api/me").status_code == 401  # neither session nor token


def test_the_proxy_refuses_paths_outside_the_allow_list_and_the_list_is_editable(app, client, runner, dhis2):
    slug, _ = dhis2
    login_via_dhis2(client, slug)
    response = client.get(f"/dhis2/{slug}/api/users")
    assert response.status_code == 403 and response.get_json()["error"] == "path_not_allowed"
    result = runner.invoke(args=["providers", "edit", slug, "--proxy-path", "users", "--proxy-path", "me"])
    assert result.exit_code == 0 and "proxy_paths" in result.output, result.output
    assert "DHIS2 proxy paths: users, me" in runner.invoke(args=["providers", "show", slug]).output
    assert client.get(f"/dhis2/{slug}/api/users?paging=false").status_code == 200
    assert client.get(f"/dhis2/{slug}/api/system/info").status_code == 403
    result = runner.invoke(args=["providers", "edit", slug, "--proxy-path", "../etc"])
    assert result.exit_code != 0 and "is not an API path" in result.output


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_the_proxy_is_read_only(app, client, dhis2, method):
    slug, _ = dhis2
    login_via_dhis2(client, slug)
    response = getattr(client, method)(f"/dhis2/{slug}/api/me", json={"firstName": "Mallory"})
    assert response.status_code == 405 and response.get_json()["error"] == "method_not_allowed"
    assert response.headers["Allow"] == "GET"


@pytest.mark.parametrize("path", ["me/../users", "me/%2e%2e/users", "me%2fusers", "me/%252e%252e/users",
                                  "http://evil.example/api/me", "me/./x", "me//x", "me\\users"])
def test_the_proxy_refuses_traversal_encoded_slashes_and_urls(app, client, dhis2, path):
    slug, _ = dhis2
    login_via_dhis2(client, slug)
    response = client.get(f"/dhis2/{slug}/api/{path}")
    assert response.status_code in (400, 404), response.get_data(as_text=True)[:300]
    assert response.status_code == 404 or response.get_json()["error"] == "invalid_path"
    assert "alice" not in response.get_data(as_text=True)


def test_the_proxy_says_log_in_again_when_nothing_is_kept(app, client, dhis2):
    slug, _ = dhis2
    login_via_dhis2(client, slug)
    with app.app_context():
        db.session.query(KeptToken).delete()
        db.session.commit()
    response = client.get(f"/dhis2/{slug}/api/me")
    assert response.status_code == 401 and response.get_json()["error"] == "login_again"
    assert response.get_json()["reason"] == "not_kept"


def test_the_proxy_answers_502_when_dhis2_is_unreachable(app, client, dhis2):
    slug, _ = dhis2
    login_via_dhis2(client, slug)
    with app.app_context():
        idp.update_provider(IdentityProvider.by_slug(slug), settings={"base_url": "http://127.0.0.1:9/"},
                            actor="test")
    response = client.get(f"/dhis2/{slug}/api/me")
    assert response.status_code == 502 and response.get_json()["error"] == "bad_gateway"


def test_the_proxy_serves_only_providers_that_keep_tokens(app, client, legacy, make_user):
    make_user("alice", password=None)
    register(app, legacy, "legacy", allow=["alice"])
    login_via_dhis2(client, "legacy")
    response = client.get("/dhis2/legacy/api/me")
    assert response.status_code == 404 and response.get_json()["error"] == "unknown_provider"
    assert client.get("/dhis2/nowhere/api/me").status_code == 404


def test_the_admin_screens_set_the_proxy_paths_and_the_applications_allowed_the_tokens(app, legacy, admin_client):
    import re

    from geologin.apps import clients
    from tests.conftest import csrf_from
    register(app, legacy, "legacy")
    keep(app, "legacy")
    page = admin_client.get("/admin/providers/legacy/edit")
    assert "organisationUnits/*" in page.get_data(as_text=True)  # the defaults
    form = {"csrf_token": csrf_from(page), "label": "DHIS2 legacy", "description": "", "enabled": "y",
            "keep_tokens": "y", "base_url": legacy.url + "/", "client_id": "geologin", "proxy_paths": "me\n../x"}
    response = admin_client.post("/admin/providers/legacy/edit", data=form)
    assert response.status_code == 400 and "is not an API path" in response.get_data(as_text=True)
    response = admin_client.post("/admin/providers/legacy/edit", data=form | {"proxy_paths": "me\ndataSets/*"})
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    with app.app_context():
        from geologin.idp import proxy_paths
        assert proxy_paths.of(IdentityProvider.by_slug("legacy")) == ["me", "dataSets/*"]
        provider_id = IdentityProvider.by_slug("legacy").id
    page = admin_client.get("/admin/apps/new")
    html = page.get_data(as_text=True)
    assert re.search(rf'name="token_provider_ids" value="{provider_id}"', html)
    response = admin_client.post("/admin/apps/new", data={
        "csrf_token": csrf_from(page), "name": "Reports", "redirect_uris": "https://app.example.org/cb",
        "allow_all_users": "y", "id_token_alg": "RS256", "token_provider_ids": str(provider_id)})
    assert response.status_code == 200, response.get_data(as_text=True)[:2000]
    with app.app_context():
        assert clients.token_provider_slugs(clients.find("Reports")) == ["legacy"]


def test_a_token_dhis2_revoked_is_refreshed_once_and_the_request_still_answered(app, client, dhis2):
    """DHIS2 answers 401 to a kept token it revoked before its expiry: the proxy asks for a refreshed one
    and forwards again, so the dashboard never sees the 401."""
    from tests.test_kept_tokens_refresh import _state, revoke
    slug, server = dhis2
    login_via_dhis2(client, slug)
    with app.app_context():
        from geologin.encryption import decrypt
        revoke(server, access_token=decrypt(db.session.scalars(select(KeptToken)).one().access_token))
    response = client.get(f"/dhis2/{slug}/api/me")
    assert response.status_code == 200 and response.get_json()["username"] == "alice"
    assert _state(server)["refresh_grants"] == 1


def test_a_refresh_dhis2_cannot_answer_now_is_a_503_not_log_in_again(app, client, dhis2):
    """The kept token expired and DHIS2 fails the refresh: the tokens stay kept, so the application is told to
    retry later (503), not to send the person through a new login."""
    from tests.test_kept_tokens_refresh import behave
    slug, server = dhis2
    login_via_dhis2(client, slug)
    with app.app_context():
        row = db.session.scalars(select(KeptToken)).one()
        row.access_expires_at = row.obtained_at
        db.session.commit()
    behave(server, token="500")
    response = client.get(f"/dhis2/{slug}/api/me")
    assert response.status_code == 503 and response.get_json()["error"] == "temporarily_unavailable"
    assert response.headers.get("Retry-After")
