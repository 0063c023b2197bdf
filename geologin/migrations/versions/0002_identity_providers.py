"""identity providers, permissions, external identities, login transactions

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 07:11:21.676826

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('provider_instances',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('slug', sa.String(length=60), nullable=False),
    sa.Column('type', sa.String(length=60), nullable=False),
    sa.Column('label', sa.String(length=120), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('allow_all_users', sa.Boolean(), nullable=False),
    sa.Column('settings_json', sa.Text(), nullable=False),
    sa.Column('secrets_json', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_provider_instances')),
    sa.UniqueConstraint('slug', name=op.f('uq_provider_instances_slug'))
    )
    op.create_table('external_identities',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('provider_id', sa.Integer(), nullable=False),
    sa.Column('subject', sa.String(length=255), nullable=False),
    sa.Column('subject_scheme', sa.String(length=40), nullable=False),
    sa.Column('external_username', sa.String(length=255), nullable=True),
    sa.Column('first_login_at', sa.DateTime(), nullable=False),
    sa.Column('last_login_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['provider_id'], ['provider_instances.id'], name=op.f('fk_external_identities_provider_id_provider_instances'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_external_identities_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_external_identities')),
    sa.UniqueConstraint('provider_id', 'subject', name=op.f('uq_external_identities_provider_id_subject')),
    sa.UniqueConstraint('provider_id', 'user_id', name=op.f('uq_external_identities_provider_id_user_id'))
    )
    with op.batch_alter_table('external_identities', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_external_identities_user_id'), ['user_id'], unique=False)

    op.create_table('login_transactions',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('provider_id', sa.Integer(), nullable=False),
    sa.Column('browser_hash', sa.String(length=64), nullable=False),
    sa.Column('nonce', sa.String(length=128), nullable=False),
    sa.Column('code_verifier', sa.String(length=128), nullable=False),
    sa.Column('redirect_uri', sa.String(length=2000), nullable=False),
    sa.Column('next_url', sa.String(length=2000), nullable=True),
    sa.Column('data_json', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['provider_id'], ['provider_instances.id'], name=op.f('fk_login_transactions_provider_id_provider_instances'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_transactions'))
    )
    with op.batch_alter_table('login_transactions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_login_transactions_created_at'), ['created_at'], unique=False)

    op.create_table('user_provider_permissions',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('provider_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['provider_id'], ['provider_instances.id'], name=op.f('fk_user_provider_permissions_provider_id_provider_instances'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_user_provider_permissions_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', 'provider_id', name=op.f('pk_user_provider_permissions'))
    )
    with op.batch_alter_table('user_provider_permissions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_user_provider_permissions_provider_id'), ['provider_id'], unique=False)



def downgrade():
    with op.batch_alter_table('user_provider_permissions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_user_provider_permissions_provider_id'))

    op.drop_table('user_provider_permissions')
    with op.batch_alter_table('login_transactions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_login_transactions_created_at'))

    op.drop_table('login_transactions')
    with op.batch_alter_table('external_identities', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_external_identities_user_id'))

    op.drop_table('external_identities')
    op.drop_table('provider_instances')
