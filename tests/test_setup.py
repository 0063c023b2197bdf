"""First run: no default account, a one-time link creates the first administrator (item 40)."""
import re

from sqlalchemy import func, select

from tests.conftest import csrf_from
from geologin.extensions import db
from geologin.models import User

LINK = re.compile(r"/setup/([A-Za-z0-9_-]+)")


def _issue_link(runner):
    result = runner.invoke(args=["setup-link"])
    assert result.exit_code == 0, result.output
    return LINK.search(result.output).group(0)


def _fill(client, link, **overrides):
    page = client.get(link)
    data = {"csrf_token": csrf_from(page), "username": "chief", "display_name": "Chief Admin",
            "email": "chief@example.org", "password": "First-admin-pass-1", "confirm": "First-admin-pass-1"}
    data.update(overrides)
    return client.post(link, data=data)


def test_login_page_points_to_setup_when_no_admin(client):
    assert "no administrator yet" in client.get("/login").get_data(as_text=True)


def test_setup_link_creates_first_admin_then_stops_working(app, client, runner):
    link = _issue_link(runner)
    assert "Create the first administrator" in client.get(link).get_data(as_text=True)
    response = _fill(client, link)
    assert response.status_code == 302
    assert "Logged in as chief" in client.get("/").get_data(as_text=True)
    assert client.get("/admin/users").status_code == 200
    with app.app_context():
        chief = User.by_username("chief")
        assert chief.is_admin and chief.active and chief.email == "chief@example.org"
    other = app.test_client()
    assert other.get(link).status_code == 404
    assert other.get("/setup").status_code == 404
    assert "no administrator yet" not in other.get("/login").get_data(as_text=True)
    assert runner.invoke(args=["setup-link"]).exit_code != 0
    assert runner.invoke(args=["setup-link", "--if-needed"]).output == ""


def test_setup_bad_input_creates_nobody(app, client, runner):
    link = _issue_link(runner)
    for overrides, message in [({"username": "two words"}, "no spaces"),
                               ({"password": "short1", "confirm": "short1"}, "at least 12"),
                               ({"password": "chief", "confirm": "chief"}, "at least 12"),
                               ({"confirm": "Something-else-99"}, "differ"),
                               ({"email": "x@"}, "valid email")]:
        response = _fill(client, link, **overrides)
        assert response.status_code == 400
        assert message in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(User)) == 0
    assert _fill(client, link).status_code == 302  # the link still works after mistakes


def test_wrong_or_replaced_token_is_refused(client, runner):
    first = _issue_link(runner)
    second = _issue_link(runner)
    assert first != second
    assert client.get(first).status_code == 404
    assert client.get("/setup/not-a-real-token").status_code == 404
    assert _fill(client, second).status_code == 302


def test_setup_without_token_explains_what_to_do(client):
    html = client.get("/setup").get_data(as_text=True)
    assert "flask --app wsgi setup-link" in html


def test_expired_token_is_refused(app, client, runner):
    app.config["SETUP_TOKEN_HOURS"] = 0
    link = _issue_link(runner)
    assert client.get(link).status_code == 404


def test_cli_admin_creation_retires_setup_link(client, runner):
    link = _issue_link(runner)
    result = runner.invoke(args=["users", "create", "boss", "--admin", "--password-stdin"],
                           input="Boss-password-123\n")
    assert result.exit_code == 0, result.output
    assert client.get(link).status_code == 404


def test_setup_notice_shows_the_command_as_code_in_every_language(client):
    """The command is a thing to type, not a sentence: it stays left-to-right (as code) inside Arabic text."""
    client.set_cookie("geologin_locale", "ar")
    html = client.get("/login").get_data(as_text=True)
    assert 'dir="rtl"' in html
    assert "<code>flask --app wsgi setup-link</code>" in html


def test_reg_a_used_setup_link_says_setup_is_done_and_points_to_login(app, client, runner):
    link = _issue_link(runner)
    _fill(client, link)
    page = app.test_client().get(link)
    assert page.status_code == 404  # nothing to set up here any more
    text = page.get_data(as_text=True)
    assert "This setup link has already been used: an administrator exists." in text
    assert 'href="/login"' in text
