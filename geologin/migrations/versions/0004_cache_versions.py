"""cache_versions: a token per cached kind of data, changed by triggers on every write to its tables

Each process caches the enabled identity providers (the login page, the start and the callback read them
on every request). Every INSERT, UPDATE or DELETE on provider_instances, by any node, any command or a
hand-written SQL statement, sets the 'providers' token to a new random value in the same transaction, so
a process that reads the token first knows at once whether its copy is still current.

A later migration that rebuilds provider_instances on SQLite (batch "move and copy") drops these
triggers with the old table: it must create them again (the statements are below).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 18:40:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

SQLITE_BUMP = ("INSERT INTO cache_versions (name, token) VALUES ('providers', lower(hex(randomblob(16)))) "
               "ON CONFLICT (name) DO UPDATE SET token = excluded.token")
POSTGRES_FUNCTION = """
CREATE OR REPLACE FUNCTION geologin_providers_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO cache_versions (name, token) VALUES ('providers', md5(random()::text || clock_timestamp()::text))
    ON CONFLICT (name) DO UPDATE SET token = excluded.token;
    RETURN NULL;
END $$
"""


def upgrade():
    op.create_table('cache_versions',
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.Column('token', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_cache_versions'))
    )
    dialect = op.get_bind().dialect.name
    if dialect == 'sqlite':
        for event in ('INSERT', 'UPDATE', 'DELETE'):
            op.execute(f"CREATE TRIGGER provider_instances_changed_{event.lower()} AFTER {event} ON provider_instances "
                       f"BEGIN {SQLITE_BUMP}; END")
        op.execute(SQLITE_BUMP)
    elif dialect == 'postgresql':
        op.execute(POSTGRES_FUNCTION)
        op.execute("CREATE TRIGGER provider_instances_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE "
                   "ON provider_instances FOR EACH STATEMENT EXECUTE FUNCTION geologin_providers_changed()")
        op.execute("INSERT INTO cache_versions (name, token) VALUES ('providers', md5(random()::text))")
    else:  # no trigger: without the row, geologin reads the providers from the database on every request
        pass


def downgrade():
    dialect = op.get_bind().dialect.name
    if dialect == 'sqlite':
        for event in ('insert', 'update', 'delete'):
            op.execute(f"DROP TRIGGER IF EXISTS provider_instances_changed_{event}")
    elif dialect == 'postgresql':
        op.execute("DROP TRIGGER IF EXISTS provider_instances_changed ON provider_instances")
        op.execute("DROP FUNCTION IF EXISTS geologin_providers_changed()")
    op.drop_table('cache_versions')
