"""The migrations build exactly the schema the models describe, on SQLite and on PostgreSQL."""
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from geologin.extensions import db
from geologin.models import alembic_render_item  # noqa: F401  (the hook the migration env uses)


def test_migrations_match_models(app):
    with app.app_context(), db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, db.metadata) == []


def test_readyz_reads_the_same_revisions_and_heads_as_alembic(app):
    """/readyz reads the migration scripts without Alembic (memory); a wrong head would report a migrated
    database as not ready, or an old one as ready."""
    from alembic.script import ScriptDirectory

    from geologin.health import migration_revisions

    with app.app_context():
        migrate = app.extensions["migrate"]
        scripts = ScriptDirectory.from_config(migrate.migrate.get_config(migrate.directory))
    known, heads = migration_revisions()
    assert heads == set(scripts.get_heads())
    assert known == {script.revision for script in scripts.walk_revisions()}
