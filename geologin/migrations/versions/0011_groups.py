"""groups (local and mapped), access by group, accounts on first login, attribute claims, dry-run logins

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 20:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('groups',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name'),
    sqlite_autoincrement=True,  # ids never reused, like every table since 0005
    )
    op.create_table('group_members',
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['group_id'], ['groups.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('group_id', 'user_id')
    )
    op.create_index(op.f('ix_group_members_user_id'), 'group_members', ['user_id'], unique=False)
    op.create_table('group_mappings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.Column('provider_id', sa.Integer(), nullable=False),
    sa.Column('external_id', sa.String(length=255), nullable=False),
    sa.Column('external_name', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['group_id'], ['groups.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['provider_id'], ['provider_instances.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('group_id', 'provider_id', 'external_id'),
    sqlite_autoincrement=True,
    )
    op.create_index(op.f('ix_group_mappings_group_id'), 'group_mappings', ['group_id'], unique=False)
    op.create_index(op.f('ix_group_mappings_provider_id'), 'group_mappings', ['provider_id'], unique=False)
    op.create_table('provider_groups',
    sa.Column('provider_id', sa.Integer(), nullable=False),
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.Column('purpose', sa.String(length=10), nullable=False),
    sa.ForeignKeyConstraint(['group_id'], ['groups.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['provider_id'], ['provider_instances.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('provider_id', 'group_id', 'purpose')
    )
    op.create_index(op.f('ix_provider_groups_group_id'), 'provider_groups', ['group_id'], unique=False)
    op.create_table('application_groups',
    sa.Column('application_id', sa.Integer(), nullable=False),
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['application_id'], ['applications.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['group_id'], ['groups.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('application_id', 'group_id')
    )
    op.create_index(op.f('ix_application_groups_group_id'), 'application_groups', ['group_id'], unique=False)

    # Plain ADD COLUMNs on both databases: SQLite keeps each table (and its AUTOINCREMENT) as it is.
    op.add_column('provider_instances', sa.Column('groups_prefixed', sa.Boolean(), server_default=sa.false(),
                                                  nullable=False))
    op.add_column('provider_instances', sa.Column('create_accounts', sa.Boolean(), server_default=sa.false(),
                                                  nullable=False))
    op.add_column('provider_instances', sa.Column('account_clash', sa.String(length=10), server_default='refuse',
                                                  nullable=False))
    op.add_column('applications', sa.Column('attribute_claims_json', sa.Text(), server_default='[]',
                                            nullable=False))
    op.add_column('login_transactions', sa.Column('purpose', sa.String(length=10), nullable=True))


def downgrade():
    # Plain DROP COLUMNs (SQLite 3.35+): a batch copy would lose provider_instances' cache triggers (0004).
    op.drop_column('login_transactions', 'purpose')
    op.drop_column('applications', 'attribute_claims_json')
    op.drop_column('provider_instances', 'account_clash')
    op.drop_column('provider_instances', 'create_accounts')
    op.drop_column('provider_instances', 'groups_prefixed')
    op.drop_index(op.f('ix_application_groups_group_id'), table_name='application_groups')
    op.drop_table('application_groups')
    op.drop_index(op.f('ix_provider_groups_group_id'), table_name='provider_groups')
    op.drop_table('provider_groups')
    op.drop_index(op.f('ix_group_mappings_provider_id'), table_name='group_mappings')
    op.drop_index(op.f('ix_group_mappings_group_id'), table_name='group_mappings')
    op.drop_table('group_mappings')
    op.drop_index(op.f('ix_group_members_user_id'), table_name='group_members')
    op.drop_table('group_members')
    op.drop_table('groups')
