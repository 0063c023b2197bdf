"""Health endpoints for load balancers and orchestrators: /healthz (the process answers) and /readyz
(the database answers, its schema is at the newest migration, the login page can be rendered and every
enabled provider's plugin is loaded)."""
import ast
from functools import lru_cache
from pathlib import Path

from flask import Blueprint, current_app, jsonify
from jinja2 import TemplateError
from sqlalchemy import inspect, select, text
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


MIGRATIONS = Path(__file__).parent / "migrations" / "versions"


@lru_cache(maxsize=1)
def migration_revisions():
    """(every revision, the heads) of geologin's migration scripts, read from their ``revision`` and
    ``down_revision`` lines: Alembic's script loader imports Mako and Pygments, about 10 MiB per worker for a
    probe (tests/test_migrations.py checks this agrees with Alembic)."""
    parents = {}
    for path in MIGRATIONS.glob("*.py"):
        names = {}
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                if node.targets[0].id in ("revision", "down_revision"):
                    names[node.targets[0].id] = ast.literal_eval(node.value)
        down = names.get("down_revision")
        parents[names["revision"]] = set(down if isinstance(down, (tuple, list)) else [down] if down else [])
    referenced = set().union(*parents.values())
    return frozenset(parents), frozenset(parents.keys() - referenced)


def _current_heads(connection):
    if not inspect(connection).has_table("alembic_version"):
        return set()
    return set(connection.execute(text("SELECT version_num FROM alembic_version")).scalars())


@bp.route("/readyz")
def readyz():
    try:
        with db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
            current = _current_heads(connection)
    except SQLAlchemyError as error:
        current_app.logger.warning("readiness check: database unreachable: %s", type(error).__name__)
        return jsonify(status="unavailable", reason="database unreachable"), 503
    known, expected = migration_revisions()
    note = {}
    if current != expected:
        known_current = current & known
        if not current or known_current:
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
