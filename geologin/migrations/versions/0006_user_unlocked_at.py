"""users.unlocked_at: an administrator's Unlock reaches every process, Redis or not

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 15:20:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    # A plain ADD COLUMN on both databases: SQLite keeps the table (and its AUTOINCREMENT) as it is.
    op.add_column('users', sa.Column('unlocked_at', sa.DateTime(), nullable=True))


def downgrade():
    op.drop_column('users', 'unlocked_at')
