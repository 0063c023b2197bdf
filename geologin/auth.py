"""Logging in and out with a local password, and the first-run setup page."""

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user, login_required
from markupsafe import Markup

from . import audit, firstrun, throttle, users
from .extensions import db
from .external import CSRF_SLOT, login_widgets, provider_logout_url, with_csrf_token
from .forms import LoginForm, ReauthForm, SetupForm
from .models import ProviderInstance, User
from .passwords import hash_password, needs_rehash, verify_password
from .redirects import safe_next
from .sessions import current_session_row, end_session, end_user_sessions, start_session

bp = Blueprint("auth", __name__)


def _landing(target):
    return redirect(safe_next(target) or url_for("home.index"))


def _password_login_failure(username):
    """Why a password login must fail, or None. Every reason shows the same message (no enumeration)."""
    user = User.by_username(username)
    if user is None:
        return None, "unknown_user"
    if not user.active:
        return user, "inactive_user"
    if not user.password_login_allowed:
        return user, "password_login_disabled"
    if not user.has_password:
        return user, "no_password"
    return user, None


@bp.route("/login", methods=["GET", "POST"])
@throttle.limit_attempts
def login():
    if current_user.is_authenticated and request.method == "GET":
        return _landing(request.args.get("next"))
    if request.method == "GET" and not safe_next(request.args.get("next")):
        return _login_page(None, 200)  # the empty form, from the per-language copy
    form = LoginForm()
    if request.method == "GET":
        form.next.data = safe_next(request.args.get("next")) or ""
    status = 400 if request.method == "POST" else 200
    if form.validate_on_submit():
        username = form.username.data
        wait = throttle.locked_for(username)
        if wait:
            audit.record("login", audit.FAILURE, target=username, reason="locked_out", actor="")
            flash(throttle.lockout_message(wait), "error")
            return _login_page(form, 429, {"Retry-After": str(wait)})
        user, reason = _password_login_failure(username)
        # Verify (or burn the same time on a dummy hash) whatever the reason, so timing reveals nothing.
        matches = verify_password(user.password_hash if user else None, form.password.data)
        if reason is None and not matches:
            reason = "bad_password"
        if reason is None:
            if needs_rehash(user.password_hash):
                user.password_hash = hash_password(form.password.data)
            throttle.record_success(username)
            start_session(user, "password", commit=False)  # one commit: the session with its audit event
            audit.record("login", target=user.username, actor=user.username)
            return _landing(form.next.data)
        audit.record("login", audit.FAILURE, target=username, reason=reason, actor="")
        locked = throttle.record_failure(username)
        if locked:
            audit.record("lockout", audit.FAILURE, target=username, actor="", detail=f"locked for {locked} s")
        flash(_("Invalid username or password."), "error")
    return _login_page(form, status)


def _login_page(form, status, headers=None):
    """The login page with ``form`` (its errors, the username typed), or with an empty form (None)."""
    if form is None:
        form_html = _empty_login_form()
    else:
        form.password.data = ""
        form_html = None
    return render_template("login.html", form=form, login_form_html=form_html,
                           needs_setup=not firstrun.admin_known_to_exist(),
                           widgets=login_widgets()), status, headers or {}


def _empty_login_form():
    """The ``login_form`` block of login.html for an empty LoginForm (no next target), in the request's
    language, with this visitor's CSRF token. The block is rendered once per language and process: it
    depends on nothing else (the field labels and WTForms' attributes are fixed per language)."""
    cache = current_app.extensions.setdefault("geologin.empty_login_form", {})
    locale = str(get_locale())
    html = cache.get(locale)
    if html is None:
        form = LoginForm()
        form.next.data = ""
        token = form.csrf_token.current_token
        template = current_app.jinja_env.get_template("login.html")
        context = {"form": form, "login_form_html": None}
        current_app.update_template_context(context)
        html = "".join(template.blocks["login_form"](template.new_context(context))).replace(token, CSRF_SLOT)
        if CSRF_SLOT not in html:
            raise RuntimeError("login.html's login_form block must render the form's CSRF token")
        cache[locale] = html
    return Markup(with_csrf_token(html))


def check_own_password(user, password, event):
    """A signed-in user's password typed again (re-authentication, password change), under the same
    per-account lockout as the login form, so a session holder cannot guess it without limit. Returns
    None when it matches, 0 when it does not, else the seconds the account is locked for; failures and
    lockouts are audited as ``event`` with the login form's reason codes."""
    wait = throttle.locked_for(user.username)
    if wait:
        audit.record(event, audit.FAILURE, target=user.username, actor=user.username, reason="locked_out")
        return wait
    if verify_password(user.password_hash, password):
        throttle.record_success(user.username)
        return None
    audit.record(event, audit.FAILURE, target=user.username, actor=user.username, reason="bad_password")
    locked = throttle.record_failure(user.username)
    if locked:
        audit.record("lockout", audit.FAILURE, target=user.username, actor="", detail=f"locked for {locked} s")
    return 0


@bp.route("/reauth", methods=["GET", "POST"])
@login_required
@throttle.limit_attempts
def reauth():
    """Confirm it is still you before administration: your password again, or your identity provider."""
    user = current_user._get_current_object()
    form = ReauthForm()
    if request.method == "GET":
        form.next.data = safe_next(request.args.get("next")) or ""
    row = current_session_row()
    provider_slug = row.auth_method.split(":", 1)[1] if row and row.auth_method.startswith("provider:") else None
    provider = ProviderInstance.by_slug(provider_slug) if provider_slug else None
    can_use_password = user.has_password and user.password_login_allowed
    if can_use_password and form.validate_on_submit():
        wait = check_own_password(user, form.password.data, "reauth")
        if wait:
            flash(throttle.lockout_message(wait), "error")
            return render_template("reauth.html", form=form, provider=provider, can_use_password=True,
                                   next=form.next.data), 429, {"Retry-After": str(wait)}
        if wait is None:
            start_session(user, "password", commit=False)  # committed with its audit event
            audit.record("reauth", target=user.username, actor=user.username)
            return _landing(form.next.data)
        form.password.errors.append(_("This is not your password."))
    status = 400 if request.method == "POST" else 200
    return render_template("reauth.html", form=form, provider=provider, can_use_password=can_use_password,
                           next=form.next.data), status


@bp.route("/logout", methods=["POST"])
def logout():
    server_logout = None
    if current_user.is_authenticated:
        username = current_user.username
        server_logout = provider_logout_url(current_session_row())
        end_session()
        audit.record("logout", target=username, actor=username)
        flash(_("You have been logged out."), "info")
    return redirect(server_logout or url_for("auth.login"))


@bp.route("/logout/everywhere", methods=["POST"])
@login_required
def logout_everywhere():
    """End every session of the signed-in user, in every browser and device (a lost phone, a shared
    computer), this one included."""
    user = current_user._get_current_object()
    username = user.username
    server_logout = provider_logout_url(current_session_row())
    end_user_sessions(user)
    end_session()
    audit.record("logout", target=username, actor=username, detail="everywhere")
    flash(_("You have been logged out everywhere."), "info")
    return redirect(server_logout or url_for("auth.login"))


@bp.route("/setup", defaults={"token": None}, methods=["GET"])
@bp.route("/setup/<token>", methods=["GET", "POST"])
def setup(token):
    """Create the first administrator through the one-time link printed on the console."""
    if firstrun.admin_exists():
        return render_template("setup_missing.html", setup_done=True), 404
    if not firstrun.setup_token_valid(token):
        return render_template("setup_missing.html", bad_token=token is not None), 404 if token else 200
    form = SetupForm()
    if form.validate_on_submit():
        try:
            user = users.create_user(
                form.username.data, display_name=form.display_name.data, email=form.email.data,
                password=form.password.data, is_admin=True, actor="setup",
            )
        except users.UserError as error:
            form.username.errors.append(error.message)
        else:
            firstrun.retire_setup_tokens()
            db.session.commit()
            start_session(user, "password")
            audit.record("login", target=user.username, actor=user.username, detail="first-run setup")
            flash(_("Welcome! You are the first administrator."), "info")
            return redirect(url_for("admin.users"))
    status = 400 if request.method == "POST" else 200
    return render_template("setup.html", form=form), status
