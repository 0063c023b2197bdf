"""kept_tokens: a version and a refresh lease (one refresh at a time across nodes), and the last refresh failure

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 21:20:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade():
    # Plain ADD COLUMNs on both databases: SQLite keeps the table and its AUTOINCREMENT.
    op.add_column('kept_tokens', sa.Column('version', sa.Integer(), server_default='0', nullable=False))
    op.add_column('kept_tokens', sa.Column('refreshing_until', sa.DateTime(), nullable=True))
    op.add_column('kept_tokens', sa.Column('refresh_failed_at', sa.DateTime(), nullable=True))
    op.add_column('kept_tokens', sa.Column('refresh_failure', sa.String(length=300), nullable=True))


def downgrade():
    # Plain DROP COLUMNs (SQLite 3.35+).
    op.drop_column('kept_tokens', 'refresh_failure')
    op.drop_column('kept_tokens', 'refresh_failed_at')
    op.drop_column('kept_tokens', 'refreshing_until')
    op.drop_column('kept_tokens', 'version')
