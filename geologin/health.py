"""Health endpoints for load balancers and orchestrators: /healthz (the process answers) and /readyz
(the database answers, its schema is at the newest migration, the login page can be rendered and every
enabled provider's plugin is loaded)."""
from pathlib import Path

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Blueprint, current_app, jsonify
from jinja2 import TemplateError
from sqlalchemy import select, text
from sqlalchemy.exc import SQLAlchemyError

from .extensions import db
from .models import IdentityProvider

# What the login page and every error page need; a package built without them cannot serve anybody.
PAGE_TEMPLATES = ("base.html", "login.html", "external_widget.html", "error.html")
STATIC_FILES = ("geologin.css",)

bp = Blueprint("health", __name__)


@bp.route("/healthz")
def healthz():
    return jsonify(status="ok")


def _script_directory():
    migrate = current_app.extensions["migrate"]
    return ScriptDirectory.from_config(migrate.migrate.get_config(migrate.directory))


@bp.route("/readyz")
def readyz():
    try:
        with db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
            current = set(MigrationContext.configure(connection).get_current_heads())
    except SQLAlchemyError as error:
        current_app.logger.warning("readiness check: database unreachable: %s", type(error).__name__)
        return jsonify(status="unavailable", reason="database unreachable"), 503
    scripts = _script_directory()
    expected = set(scripts.get_heads())
    note = {}
    if current != expected:
        known = {revision for revision in current if _is_known(scripts, revision)}
        if not current or known:
            return jsonify(status="unavailable", reason="database schema is not at the newest migration",
                           current=sorted(current), expected=sorted(expected)), 503
        # A newer release migrated the database during a rolling upgrade; this node keeps serving.
        note = {"note": "database schema is newer than this release"}
    problem = _serving_problem()
    if problem:
        current_app.logger.warning("readiness check: %s", problem)
        return jsonify(status="unavailable", reason=problem), 503
    return jsonify(status="ready", **note)


def _serving_problem():
    """Why this process could not serve the login page, or None: templates, static files, and the plugin of
    every enabled provider."""
    for name in PAGE_TEMPLATES:
        try:
            current_app.jinja_env.get_template(name)
        except TemplateError:
            return f"template {name} cannot be loaded"
    for name in STATIC_FILES:
        if not (Path(current_app.static_folder) / name).is_file():
            return f"static file {name} is missing"
    installed = current_app.extensions["geologin.plugins"]
    for type_name in db.session.scalars(select(IdentityProvider.type).where(IdentityProvider.enabled).distinct()):
        if installed.get(type_name) is None:
            return f"the plugin {type_name!r} of an enabled provider is not installed"
    return None


def _is_known(scripts, revision):
    try:
        return scripts.get_revision(revision) is not None
    except Exception:  # alembic raises its own errors for unknown revisions
        return False
