"""Health endpoints for load balancers and orchestrators: /healthz (the process answers) and /readyz
(the database answers and its schema is at the newest migration)."""
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Blueprint, current_app, jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from .extensions import db

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
    if current == expected:
        return jsonify(status="ready")
    known = {revision for revision in current if _is_known(scripts, revision)}
    if current and not known:
        # A newer release migrated the database during a rolling upgrade; this node keeps serving.
        return jsonify(status="ready", note="database schema is newer than this release")
    return jsonify(status="unavailable", reason="database schema is not at the newest migration",
                   current=sorted(current), expected=sorted(expected)), 503


def _is_known(scripts, revision):
    try:
        return scripts.get_revision(revision) is not None
    except Exception:  # alembic raises its own errors for unknown revisions
        return False
