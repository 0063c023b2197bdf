"""application_token_providers (which application may receive which provider's kept tokens) and the
providers' proxy_paths (what the read-only DHIS2 proxy forwards)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 21:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('application_token_providers',
    sa.Column('application_id', sa.Integer(), nullable=False),
    sa.Column('provider_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['application_id'], ['applications.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['provider_id'], ['provider_instances.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('application_id', 'provider_id'),
    )
    op.create_index(op.f('ix_application_token_providers_provider_id'), 'application_token_providers',
                    ['provider_id'], unique=False)
    # A plain ADD COLUMN on both databases: SQLite keeps the table, its AUTOINCREMENT and its triggers.
    op.add_column('provider_instances', sa.Column('proxy_paths_json', sa.Text(), nullable=True))


def downgrade():
    # A plain DROP COLUMN (SQLite 3.35+): a batch copy would lose provider_instances' cache triggers (0004).
    op.drop_column('provider_instances', 'proxy_paths_json')
    op.drop_index(op.f('ix_application_token_providers_provider_id'), table_name='application_token_providers')
    op.drop_table('application_token_providers')
