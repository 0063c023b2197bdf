"""forward-auth: protected sites' hosts and first visits

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 18:10:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('application_hosts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('application_id', sa.Integer(), nullable=False),
    sa.Column('host', sa.String(length=260), nullable=False),
    sa.ForeignKeyConstraint(['application_id'], ['applications.id'], name=op.f('fk_application_hosts_application_id_applications'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_application_hosts')),
    sa.UniqueConstraint('host', name=op.f('uq_application_hosts_host')),
    sqlite_autoincrement=True,  # ids never reused, like every table since 0005
    )
    with op.batch_alter_table('application_hosts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_application_hosts_application_id'), ['application_id'], unique=False)

    op.create_table('forward_auth_visits',
    sa.Column('session_id', sa.String(length=64), nullable=False),
    sa.Column('application_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['application_id'], ['applications.id'], name=op.f('fk_forward_auth_visits_application_id_applications'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['session_id'], ['user_sessions.id'], name=op.f('fk_forward_auth_visits_session_id_user_sessions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('session_id', 'application_id', name=op.f('pk_forward_auth_visits'))
    )
    with op.batch_alter_table('forward_auth_visits', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_forward_auth_visits_application_id'), ['application_id'], unique=False)

    # A plain ADD COLUMN on both databases: SQLite keeps the table (and its AUTOINCREMENT) as it is.
    op.add_column('applications', sa.Column('kind', sa.String(length=20), server_default='oidc', nullable=False))


def downgrade():
    with op.batch_alter_table('applications', schema=None, table_kwargs={'sqlite_autoincrement': True}) as batch_op:
        batch_op.drop_column('kind')

    with op.batch_alter_table('forward_auth_visits', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_forward_auth_visits_application_id'))

    op.drop_table('forward_auth_visits')
    with op.batch_alter_table('application_hosts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_application_hosts_application_id'))

    op.drop_table('application_hosts')
