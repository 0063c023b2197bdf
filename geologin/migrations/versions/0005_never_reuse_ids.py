"""ids never reused, and no rows left pointing at deleted ones, so foreign keys can be enforced on SQLite

Until now SQLite never enforced foreign keys (PRAGMA foreign_keys was never set), so deleting a user or a
provider left its sessions, permissions, bound identities and login transactions behind, and SQLite gave
the deleted row's id to the next row created, which inherited them. geologin now turns foreign keys on for
every SQLite connection. This migration:

1. deletes the rows whose user or provider no longer exists (on any database; on PostgreSQL, which always
   enforced the keys, there are none), so that enforcing the keys cannot break an existing database;
2. on SQLite, rebuilds the tables with integer ids as AUTOINCREMENT tables (ids never reused), keeping
   every row and id, and creates again the provider_instances triggers of 0004 that the rebuild drops.
   PostgreSQL sequences never reuse ids: nothing to do there.

env.py runs SQLite migrations with foreign keys off: the rebuild drops and renames tables that others refer
to, and with the keys on, dropping a table deletes its rows first, cascading to every referencing row.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 15:00:00

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

# Children first: a row whose parent is gone is deleted.
ORPHANS = [
    ("user_sessions", "user_id", "users"),
    ("user_provider_permissions", "user_id", "users"),
    ("user_provider_permissions", "provider_id", "provider_instances"),
    ("external_identities", "user_id", "users"),
    ("external_identities", "provider_id", "provider_instances"),
    ("login_transactions", "provider_id", "provider_instances"),
]
# Tables with an integer id that something may name (a cookie's user id, a form's provider id...).
INTEGER_ID_TABLES = ("users", "provider_instances", "external_identities", "audit_events", "setup_tokens")
# The same statement as 0004's (a migration must not import another one).
SQLITE_BUMP = ("INSERT INTO cache_versions (name, token) VALUES ('providers', lower(hex(randomblob(16)))) "
               "ON CONFLICT (name) DO UPDATE SET token = excluded.token")


def _delete_orphans():
    for child, column, parent in ORPHANS:
        op.execute(f"DELETE FROM {child} WHERE {column} NOT IN (SELECT id FROM {parent})")


def _rebuild_sqlite(autoincrement):
    bind = op.get_bind()
    if bind.exec_driver_sql("PRAGMA foreign_keys").scalar():
        raise RuntimeError("SQLite migrations must run with foreign keys off (see migrations/env.py): rebuilding "
                           "a table with them on would delete every row that refers to it")
    for table in INTEGER_ID_TABLES:
        with op.batch_alter_table(table, recreate="always",
                                  table_kwargs={"sqlite_autoincrement": autoincrement}):
            pass
    for event in ('INSERT', 'UPDATE', 'DELETE'):
        op.execute(f"DROP TRIGGER IF EXISTS provider_instances_changed_{event.lower()}")
        op.execute(f"CREATE TRIGGER provider_instances_changed_{event.lower()} AFTER {event} ON provider_instances "
                   f"BEGIN {SQLITE_BUMP}; END")
    op.execute(SQLITE_BUMP)
    problems = bind.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if problems:
        raise RuntimeError(f"rows still refer to missing rows after the rebuild: {problems[:5]}")


def upgrade():
    _delete_orphans()
    if op.get_bind().dialect.name == 'sqlite':
        _rebuild_sqlite(autoincrement=True)


def downgrade():
    if op.get_bind().dialect.name == 'sqlite':
        _rebuild_sqlite(autoincrement=False)
