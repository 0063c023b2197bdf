"""Forward authentication: before a reverse proxy (nginx, Traefik, Caddy) passes a request to a protected
site, it asks geologin whether the person may, and who they are. The answer comes from geologin's own
session cookie (shared with the sites through SESSION_COOKIE_DOMAIN) and the site's access rules; the happy
path reads two rows and writes nothing, so it can run on every request of every site."""
import logging
from collections import OrderedDict
from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy.exc import IntegrityError

from .. import audit
from ..extensions import csrf, db
from ..groups import membership
from ..login.sessions import current_session_row, end_session
from ..models import ForwardAuthVisit
from . import access, clients

logger = logging.getLogger("geologin.apps")
bp = Blueprint("forward_auth", __name__)

MAX_URL = 4000
INVALID_REQUEST, COOKIE_DOMAIN = "invalid_request", "cookie_domain"
# Sessions known (in this process) to have visited a site already: their next requests are not audited.
_SEEN_MAX = 10000
_seen = OrderedDict()


def identity_headers(user):
    """What the proxy passes on to the site. The recipes make the proxy drop these headers from the client's
    own request, so only geologin can set them."""
    headers = {"Remote-User": user.username, "X-Forwarded-User": user.username,
               "Remote-Name": _header_text(user.display_name or user.username)}
    if user.email:
        headers["Remote-Email"] = user.email
    # Authelia's format: the names joined by commas (a group name never holds one), present even when empty
    # so that no proxy keeps a value the client sent.
    headers["Remote-Groups"] = _header_text(",".join(membership.names(user)), safe="/,")
    return headers


def _header_text(value, safe="/"):
    """Header values are Latin-1 on the wire: a name in another script is sent percent-encoded (RFC 8187
    style), so it arrives intact instead of breaking the response."""
    try:
        value.encode("latin-1")
        return value
    except UnicodeEncodeError:
        from urllib.parse import quote
        return "UTF-8''" + quote(value, safe=safe)


def _original_url_nginx():
    return request.headers.get("X-Original-URL", "")


def _original_url_forwarded():
    proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    host = request.headers.get("X-Forwarded-Host", "").split(",")[0].strip()
    uri = request.headers.get("X-Forwarded-Uri", "/") or "/"
    if not proto or not host:
        return ""
    return f"{proto}://{host}{uri if uri.startswith('/') else '/' + uri}"


def _site_of(url):
    """The protected site an absolute http(s) URL belongs to, or None (unknown host, or not a URL)."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL or any(ord(c) < 33 for c in url):
        return None
    try:
        parts = urlsplit(url)
        netloc, port = parts.netloc, parts.port
    except ValueError:  # not a URL, or a port out of range
        return None
    if parts.scheme not in ("http", "https") or not netloc or "@" in netloc:
        return None
    site = clients.site_for_host(netloc)
    if site is None and port is not None and port == (443 if parts.scheme == "https" else 80):
        site = clients.site_for_host(parts.hostname)
    return site


def _login_url(original):
    base = current_app.config.get("PUBLIC_URL") or request.host_url.rstrip("/")
    return base + url_for("forward_auth.back", rd=original)


def _plain(status, text, headers=None):
    return Response(text + "\n", status=status, mimetype="text/plain", headers=headers or {})


def _verify(original, nginx):
    site = _site_of(original)
    if site is None:
        logger.warning("forward-auth: no protected site for %r", original[:200])
        return _plain(403 if original else 400, "geologin: this host is not a protected site" if original else
                      "geologin: the proxy sent no original URL (see docs/forward-auth.md)")
    if not current_user.is_authenticated:
        location = _login_url(original)
        if nginx:  # auth_request accepts only 2xx, 401 and 403: the recipe turns this 401 into the redirect
            return _plain(401, "geologin: log in first", {"Location": location})
        return redirect(location)
    row = current_session_row()
    reason = access.refusal(site, current_user, row.auth_method)
    _first_visit(row, site, reason)
    if reason is not None:
        return render_template("apps/refused.html", application=site, back_url=None), 403
    return Response(status=200, headers=identity_headers(current_user))


def _first_visit(row, site, reason):
    """Audit a session's first request to a site (granted or refused); later requests cost one look-up in
    this process's memory."""
    key = (row.id, site.id)
    if key in _seen:
        return
    if db.session.get(ForwardAuthVisit, key) is None:
        db.session.add(ForwardAuthVisit(session_id=row.id, application_id=site.id))
        try:
            audit.record("app.forward_auth", audit.FAILURE if reason else audit.SUCCESS,
                         target=current_user.username, reason=reason, detail=f"site {site.name}")
        except IntegrityError:  # another process recorded the same first visit a moment ago
            db.session.rollback()
    _seen[key] = True
    if len(_seen) > _SEEN_MAX:
        _seen.popitem(last=False)


@bp.route("/forward-auth/nginx")
def nginx():
    """nginx ``auth_request``: 200 with identity headers, 401 with a Location to log in, or 403."""
    return _verify(_original_url_nginx(), nginx=True)


@bp.route("/forward-auth")
def forwarded():
    """Traefik ``forwardAuth`` and Caddy ``forward_auth``: 200 with identity headers, a redirect to log in,
    or 403 with a page."""
    return _verify(_original_url_forwarded(), nginx=False)


@bp.route("/forward-auth/back")
def back():
    """Where a protected site sends a person who is not logged in: geologin's login page, then back to the
    page they wanted. Only a URL on a registered host is ever redirected to (no open redirect)."""
    target = request.args.get("rd", "")
    site = _site_of(target)
    if site is None:
        return render_template("apps/error.html", code=INVALID_REQUEST,
                               description=_("This link does not lead to a page of a protected site.")), 400
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login", next=url_for("forward_auth.back", rd=target)))
    row = current_session_row()
    reason = access.refusal(site, current_user, row.auth_method)
    if reason is not None:
        _first_visit(row, site, reason)
        return render_template("apps/refused.html", application=site, back_url=None), 403
    if not _cookie_reaches(urlsplit(target).hostname):
        # Sending the person on would bring them straight back here, forever: say what to configure instead.
        logger.error("forward-auth: the session cookie does not reach %s; set SESSION_COOKIE_DOMAIN",
                     urlsplit(target).hostname)
        return render_template("apps/error.html", code=COOKIE_DOMAIN, description=_(
            "geologin's session cookie does not reach %(host)s: set SESSION_COOKIE_DOMAIN to a domain that covers "
            "both geologin's host and the site's (docs/forward-auth.md).", host=urlsplit(target).hostname)), 409
    return redirect(target)


def _cookie_reaches(hostname):
    """Whether the browser sends geologin's session cookie to ``hostname``."""
    domain = current_app.config.get("SESSION_COOKIE_DOMAIN")
    own = urlsplit(current_app.config.get("PUBLIC_URL") or request.host_url).hostname
    if not domain:
        return hostname == own
    return hostname == domain or hostname.endswith("." + domain)


@bp.route("/forward-auth/logout", methods=["GET", "POST"])
@csrf.exempt  # a site's "Log out" link; logging out is all it can do
def logout():
    """A protected site's sign-out link: ends the geologin session (and so every site's access), then back
    to ``rd`` if it is a page of a protected site."""
    target = request.values.get("rd", "")
    if current_user.is_authenticated:
        username = current_user.username
        end_session()
        audit.record("logout", target=username, actor=username, detail="from a protected site")
    if _site_of(target) is not None:
        return redirect(target)
    return render_template("apps/logged_out.html")


_VERIFY_ENDPOINTS = frozenset({"forward_auth.nginx", "forward_auth.forwarded"})


def _without_cookie_refresh(interface):
    """The app's session interface, except that a verification answer does not re-sign and re-send an unchanged
    session cookie: proxies never pass that Set-Cookie on, and the proxies ask on every request of every site."""
    class Interface(type(interface)):
        def should_set_cookie(self, app, session):
            if request.endpoint in _VERIFY_ENDPOINTS and not session.modified:
                return False
            return super().should_set_cookie(app, session)
    replacement = Interface.__new__(Interface)
    replacement.__dict__.update(interface.__dict__)
    return replacement


def init_app(app):
    app.register_blueprint(bp)
    app.session_interface = _without_cookie_refresh(app.session_interface)
