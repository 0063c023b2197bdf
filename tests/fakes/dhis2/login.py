"""DHIS2's own pages: the dashboard, the login page of every version, its form and JSON login, logout."""
from __future__ import annotations


from flask import Response, abort, request

from .state import S
from .web import (dhis, dhis_error, esc, html_page, json_response, locked, log_in, log_out, redirect_to_login,
                  session_user)


@dhis.route("/", strict_slashes=False)
@locked
def root():
    return Response("", 302, {"Location": S().root + "/dhis-web-dashboard/"})


@dhis.route("/dhis-web-dashboard/", strict_slashes=False)
@locked
def dashboard():
    user = session_user()
    if user is None:
        return redirect_to_login()
    logout = S().base + "/dhis-web-commons-security/logout.action"
    return html_page("DHIS 2 (fake) dashboard",
                     f"<h1>Fake DHIS2 dashboard</h1><p>Logged in as "
                     f"<b id=\"username\">{esc(user['username'])}</b>.</p>"
                     f"<p><a href=\"{esc(logout)}\">Log out</a></p>")


def login_page() -> Response:
    state = S()
    error = ""
    if request.args.get("failed"):
        error = "<p class=\"error\" id=\"error\">Wrong username or password. Please try again.</p>"
    action = state.base + "/dhis-web-commons-security/login.action"
    body = (f"<h1>DHIS 2 (fake) {esc(state.version_text)}</h1>{error}\n"
            f"<form id=\"loginForm\" method=\"post\" action=\"{esc(action)}\">\n"
            "<label for=\"j_username\">Username</label>"
            "<input type=\"text\" id=\"j_username\" name=\"j_username\" autocomplete=\"username\">\n"
            "<label for=\"j_password\">Password</label>"
            "<input type=\"password\" id=\"j_password\" name=\"j_password\">\n"
            "<input type=\"submit\" id=\"submit\" value=\"Sign in\">\n</form>")
    return html_page("DHIS 2 (fake) - Log in", body)


@dhis.route("/dhis-web-commons/security/login.action")
@dhis.route("/dhis-web-login/", strict_slashes=False)
@dhis.route("/login/", strict_slashes=False)
@locked
def login_form():
    return login_page()


def after_login_location(sess: dict) -> str:
    saved = sess.pop("saved", None) or "/dhis-web-dashboard/"
    return saved


@dhis.route("/dhis-web-commons-security/login.action", methods=["POST"])
@locked
def login_submit():
    state = S()
    user = state.check_password(request.form.get("j_username", ""),
                                request.form.get("j_password", ""))
    if user is None:
        return Response("", 302, {"Location": state.root + state.login_path() + "?failed=true"})
    sess = log_in(user)
    return Response("", 302, {"Location": state.root + after_login_location(sess)})


@dhis.route("/api/auth/login", methods=["POST"])
@locked
def api_auth_login():
    """2.41+: what the login app calls with JSON {username, password, twoFactorCode}."""
    state = S()
    if state.version < (2, 41, 0):
        abort(404)
    data = request.get_json(silent=True) or {}
    user = state.check_password(data.get("username", ""), data.get("password", ""))
    if user is None:
        return dhis_error(401, "Bad credentials")
    sess = log_in(user)
    return json_response({"loginStatus": "SUCCESS",
                          "redirectUrl": state.base + after_login_location(sess)})


@dhis.route("/dhis-web-commons-security/logout.action", methods=["GET", "POST"])
@dhis.route("/api/auth/logout", methods=["GET", "POST"])
@locked
def logout():
    log_out()
    return Response("", 302, {"Location": S().root + S().login_path()})
