"""kept_tokens: the tokens a provider issued at a person's last login, for providers that keep them

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 21:05:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('kept_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('provider_id', sa.Integer(), nullable=False),
    sa.Column('access_token', sa.Text(), nullable=False),
    sa.Column('refresh_token', sa.Text(), nullable=True),
    sa.Column('scope', sa.Text(), nullable=True),
    sa.Column('obtained_at', sa.DateTime(), nullable=False),
    sa.Column('access_expires_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['provider_id'], ['provider_instances.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('user_id', 'provider_id'),
    sqlite_autoincrement=True,  # ids never reused, like every table since 0005
    )
    op.create_index(op.f('ix_kept_tokens_provider_id'), 'kept_tokens', ['provider_id'], unique=False)
    op.create_index(op.f('ix_kept_tokens_user_id'), 'kept_tokens', ['user_id'], unique=False)
    # A plain ADD COLUMN on both databases: SQLite keeps the table, its AUTOINCREMENT and its triggers.
    op.add_column('provider_instances', sa.Column('keep_tokens', sa.Boolean(), server_default=sa.false(),
                                                  nullable=False))


def downgrade():
    # A plain DROP COLUMN (SQLite 3.35+): a batch copy would lose provider_instances' cache triggers (0004).
    op.drop_column('provider_instances', 'keep_tokens')
    op.drop_index(op.f('ix_kept_tokens_user_id'), table_name='kept_tokens')
    op.drop_index(op.f('ix_kept_tokens_provider_id'), table_name='kept_tokens')
    op.drop_table('kept_tokens')
