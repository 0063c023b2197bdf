"""Headers every page sends and the error pages (checklist items 9, 33 in part, 35)."""
from tests.conftest import TEST_SECRET_KEY


def test_sec_09_every_page_forbids_framing(client):
    for url in ["/login", "/setup", "/no-such-page"]:
        response = client.get(url)
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_sec_33_csp_allows_no_inline_script(client):
    csp = client.get("/login").headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp


def test_sec_35_production_error_page_has_no_stack_trace(app_factory, tmp_path):
    app = app_factory(TESTING=False, DEBUG=False, ENV="development")  # plain-http PUBLIC_URL

    @app.route("/boom")
    def boom():
        raise RuntimeError("database password is hunter2")

    response = app.test_client().get("/boom")
    body = response.get_data(as_text=True)
    assert response.status_code == 500
    assert "Something went wrong on our side" in body
    assert "hunter2" not in body and "Traceback" not in body and TEST_SECRET_KEY not in body


def test_404_page_is_friendly(client):
    response = client.get("/nowhere")
    assert response.status_code == 404
    assert "There is no page at this address." in response.get_data(as_text=True)


def test_static_css_is_served_locally(client):
    html = client.get("/login").get_data(as_text=True)
    assert 'href="/static/geologin.css"' in html and "https://" not in html
    assert client.get("/static/geologin.css").status_code == 200
