"""external_identities: the groups and attributes the provider stated at the last login, and when

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 18:40:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    # Plain ADD COLUMNs on both databases: SQLite keeps the table (and its AUTOINCREMENT) as it is.
    op.add_column('external_identities', sa.Column('groups_json', sa.Text(), nullable=True))
    op.add_column('external_identities', sa.Column('attributes_json', sa.Text(), nullable=True))
    op.add_column('external_identities', sa.Column('attributes_seen_at', sa.DateTime(), nullable=True))


def downgrade():
    op.drop_column('external_identities', 'attributes_seen_at')
    op.drop_column('external_identities', 'attributes_json')
    op.drop_column('external_identities', 'groups_json')
