"""What each process caches for the login page and the external-login start (the usable providers, the
rendered widgets, the empty password form) is never stale and never shared between visitors: a change made
through another node, a command or plain SQL shows on the next request, and every page carries the
visitor's own working CSRF token (benchmarks/RESULTS.md explains why these caches exist)."""
import re

from sqlalchemy import text

from geologin import idp as instances
from geologin.extensions import db
from tests.conftest import csrf_from

TOKENS = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def register(app, slug, label, **extra):
    with app.app_context():
        return instances.create_provider(
            "dhis2", slug=slug, label=label, actor="test",
            settings={"base_url": f"https://{slug}.example.org/", "client_id": "geologin", "generation": "legacy"},
            secrets={"client_secret": "s3cret"}, **extra).id


def page(app, **kwargs):
    return app.test_client().get("/login", **kwargs).get_data(as_text=True)


def start(client, slug):
    token = csrf_from(client.get("/login"))
    return client.post("/auth/start", data={"csrf_token": token, "provider": slug})


def test_a_change_on_one_node_shows_on_the_other_at_once(app_factory):
    node_a = app_factory(PUBLIC_URL="http://localhost")
    node_b = app_factory(PUBLIC_URL="http://localhost")
    register(node_a, "moh", "Ministry of Health")
    register(node_a, "nhis", "Insurance")
    html = page(node_b)  # now cached on node B
    assert 'value="moh"' in html and 'value="nhis"' in html
    with node_a.app_context():
        instances.update_provider(instances.IdentityProvider.by_slug("moh"), enabled=False, actor="test")
    html = page(node_b)
    assert 'value="moh"' not in html and 'value="nhis"' in html
    client = node_b.test_client()
    response = start(client, "moh")  # the start refuses it too
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert start(node_b.test_client(), "nhis").headers["Location"].startswith("https://nhis.example.org/")
    with node_a.app_context():
        instances.delete_provider(instances.IdentityProvider.by_slug("nhis"), actor="test")
    assert 'value="nhis"' not in page(node_b)
    assert start(node_b.test_client(), "nhis").headers["Location"] == "/login"


def test_plain_sql_changes_show_at_once(app):
    register(app, "moh", "Ministry of Health")
    register(app, "nhis", "Insurance")
    assert "Ministry of Health" in page(app)
    with app.app_context():
        db.session.execute(text("UPDATE provider_instances SET label = 'Renamed server' WHERE slug = 'moh'"))
        db.session.commit()
    html = page(app)
    assert "Renamed server" in html and "Ministry of Health" not in html
    with app.app_context():
        db.session.execute(text("UPDATE provider_instances SET enabled = false"))
        db.session.commit()
    html = page(app)
    assert 'value="moh"' not in html and 'value="nhis"' not in html
    assert start(app.test_client(), "moh").headers["Location"] == "/login"


def test_every_visitor_gets_a_working_token_of_their_own(app):
    register(app, "moh", "Ministry of Health")
    register(app, "nhis", "Insurance")
    first, second = app.test_client(), app.test_client()
    tokens = []
    for client in (first, second, first):
        found = set(TOKENS.findall(client.get("/login").get_data(as_text=True)))
        assert len(found) == 1  # the password form and the widget carry the same token
        tokens.append(found.pop())
    assert tokens[0] != tokens[1]
    for client, token in ((first, tokens[2]), (second, tokens[1])):
        response = client.post("/auth/start", data={"csrf_token": token, "provider": "nhis"})
        assert response.headers["Location"].startswith("https://nhis.example.org/")
    # A token from another visitor's page is refused, whether it came from the cached form or widget.
    third = app.test_client()
    third.get("/login")
    assert third.post("/auth/start", data={"csrf_token": tokens[1], "provider": "nhis"}).status_code == 400
    assert third.post("/login", data={"csrf_token": tokens[1], "username": "x", "password": "y"}).status_code == 400


def test_remembered_server_and_next_target_still_reach_the_page(app):
    register(app, "moh", "Ministry of Health")
    register(app, "nhis", "Insurance")
    client = app.test_client()
    client.set_cookie("geologin_provider", "nhis")
    html = client.get("/login").get_data(as_text=True)
    assert '<option value="nhis" selected>' in html and '<option value="moh">' in html
    assert '<option value="moh" selected>' not in page(app)
    html = page(app, query_string={"next": "/account/password"})
    assert html.count('value="/account/password"') == 2  # the password form and the widget
