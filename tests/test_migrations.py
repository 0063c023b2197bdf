"""The migrations build exactly the schema the models describe, on SQLite and on PostgreSQL."""
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from geologin.extensions import db
from geologin.models import alembic_render_item  # noqa: F401  (the hook the migration env uses)


def test_migrations_match_models(app):
    with app.app_context(), db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, db.metadata) == []
