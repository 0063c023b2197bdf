"""applications: the OpenID provider's clients, consents, codes and tokens

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 17:30:00

"""
from alembic import op
import sqlalchemy as sa
import uuid


# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    # users.subject: added empty, given a random value per user, then made required and unique (SQLite copies
    # the table for that: keep its AUTOINCREMENT, migration 0005).
    op.add_column('users', sa.Column('subject', sa.String(length=36), nullable=True))
    users = sa.table('users', sa.column('id', sa.Integer), sa.column('subject', sa.String))
    connection = op.get_bind()
    for (user_id,) in connection.execute(sa.select(users.c.id)).all():
        connection.execute(users.update().where(users.c.id == user_id).values(subject=str(uuid.uuid4())))
    with op.batch_alter_table('users', schema=None, table_kwargs={'sqlite_autoincrement': True}) as batch_op:
        batch_op.alter_column('subject', existing_type=sa.String(length=36), nullable=False)
        batch_op.create_unique_constraint(batch_op.f('uq_users_subject'), ['subject'])
    op.create_table('applications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('secret_hash', sa.String(length=64), nullable=True),
    sa.Column('redirect_uris_json', sa.Text(), nullable=False),
    sa.Column('post_logout_uris_json', sa.Text(), nullable=False),
    sa.Column('backchannel_logout_uri', sa.String(length=2000), nullable=True),
    sa.Column('first_party', sa.Boolean(), nullable=False),
    sa.Column('allow_all_users', sa.Boolean(), nullable=False),
    sa.Column('providers_only', sa.Boolean(), nullable=False),
    sa.Column('refresh_tokens', sa.Boolean(), nullable=False),
    sa.Column('id_token_alg', sa.String(length=10), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('secret_changed_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_applications')),
    sa.UniqueConstraint('client_id', name=op.f('uq_applications_client_id')),
    sa.UniqueConstraint('name', name=op.f('uq_applications_name')),
    sqlite_autoincrement=True,  # ids never reused, like every table since 0005
    )
    op.create_table('application_providers',
    sa.Column('application_id', sa.Integer(), nullable=False),
    sa.Column('provider_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['application_id'], ['applications.id'], name=op.f('fk_application_providers_application_id_applications'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['provider_id'], ['provider_instances.id'], name=op.f('fk_application_providers_provider_id_provider_instances'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('application_id', 'provider_id', name=op.f('pk_application_providers'))
    )
    with op.batch_alter_table('application_providers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_application_providers_provider_id'), ['provider_id'], unique=False)

    op.create_table('application_users',
    sa.Column('application_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['application_id'], ['applications.id'], name=op.f('fk_application_users_application_id_applications'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_application_users_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('application_id', 'user_id', name=op.f('pk_application_users'))
    )
    with op.batch_alter_table('application_users', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_application_users_user_id'), ['user_id'], unique=False)

    op.create_table('consents',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('application_id', sa.Integer(), nullable=False),
    sa.Column('scope', sa.Text(), nullable=False),
    sa.Column('granted_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['application_id'], ['applications.id'], name=op.f('fk_consents_application_id_applications'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_consents_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', 'application_id', name=op.f('pk_consents'))
    )
    with op.batch_alter_table('consents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_consents_application_id'), ['application_id'], unique=False)

    op.create_table('authorization_codes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('application_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('session_id', sa.String(length=64), nullable=True),
    sa.Column('redirect_uri', sa.String(length=2000), nullable=False),
    sa.Column('scope', sa.Text(), nullable=False),
    sa.Column('nonce', sa.String(length=255), nullable=True),
    sa.Column('code_challenge', sa.String(length=128), nullable=True),
    sa.Column('code_challenge_method', sa.String(length=10), nullable=True),
    sa.Column('auth_time', sa.DateTime(), nullable=False),
    sa.Column('auth_method', sa.String(length=120), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('used_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['application_id'], ['applications.id'], name=op.f('fk_authorization_codes_application_id_applications'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['session_id'], ['user_sessions.id'], name=op.f('fk_authorization_codes_session_id_user_sessions'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_authorization_codes_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_authorization_codes')),
    sa.UniqueConstraint('code_hash', name=op.f('uq_authorization_codes_code_hash')),
    sqlite_autoincrement=True,  # ids never reused, like every table since 0005
    )
    with op.batch_alter_table('authorization_codes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_authorization_codes_application_id'), ['application_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_authorization_codes_expires_at'), ['expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_authorization_codes_session_id'), ['session_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_authorization_codes_user_id'), ['user_id'], unique=False)

    op.create_table('oauth_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('access_token_hash', sa.String(length=64), nullable=False),
    sa.Column('refresh_token_hash', sa.String(length=64), nullable=True),
    sa.Column('application_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('session_id', sa.String(length=64), nullable=True),
    sa.Column('sid', sa.String(length=64), nullable=False),
    sa.Column('code_id', sa.Integer(), nullable=True),
    sa.Column('chain', sa.String(length=64), nullable=False),
    sa.Column('scope', sa.Text(), nullable=False),
    sa.Column('auth_time', sa.DateTime(), nullable=False),
    sa.Column('auth_method', sa.String(length=120), nullable=False),
    sa.Column('issued_at', sa.DateTime(), nullable=False),
    sa.Column('access_expires_at', sa.DateTime(), nullable=False),
    sa.Column('refresh_expires_at', sa.DateTime(), nullable=True),
    sa.Column('refreshed_at', sa.DateTime(), nullable=True),
    sa.Column('revoked_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['application_id'], ['applications.id'], name=op.f('fk_oauth_tokens_application_id_applications'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['code_id'], ['authorization_codes.id'], name=op.f('fk_oauth_tokens_code_id_authorization_codes'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['session_id'], ['user_sessions.id'], name=op.f('fk_oauth_tokens_session_id_user_sessions'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_oauth_tokens_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_oauth_tokens')),
    sa.UniqueConstraint('access_token_hash', name=op.f('uq_oauth_tokens_access_token_hash')),
    sa.UniqueConstraint('refresh_token_hash', name=op.f('uq_oauth_tokens_refresh_token_hash')),
    sqlite_autoincrement=True,  # ids never reused, like every table since 0005
    )
    with op.batch_alter_table('oauth_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_oauth_tokens_application_id'), ['application_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_oauth_tokens_chain'), ['chain'], unique=False)
        batch_op.create_index(batch_op.f('ix_oauth_tokens_code_id'), ['code_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_oauth_tokens_revoked_at'), ['revoked_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_oauth_tokens_session_id'), ['session_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_oauth_tokens_sid'), ['sid'], unique=False)
        batch_op.create_index(batch_op.f('ix_oauth_tokens_user_id'), ['user_id'], unique=False)



def downgrade():
    with op.batch_alter_table('users', schema=None, table_kwargs={'sqlite_autoincrement': True}) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_users_subject'), type_='unique')
        batch_op.drop_column('subject')
    with op.batch_alter_table('oauth_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_oauth_tokens_user_id'))
        batch_op.drop_index(batch_op.f('ix_oauth_tokens_sid'))
        batch_op.drop_index(batch_op.f('ix_oauth_tokens_session_id'))
        batch_op.drop_index(batch_op.f('ix_oauth_tokens_revoked_at'))
        batch_op.drop_index(batch_op.f('ix_oauth_tokens_code_id'))
        batch_op.drop_index(batch_op.f('ix_oauth_tokens_chain'))
        batch_op.drop_index(batch_op.f('ix_oauth_tokens_application_id'))

    op.drop_table('oauth_tokens')
    with op.batch_alter_table('authorization_codes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_authorization_codes_user_id'))
        batch_op.drop_index(batch_op.f('ix_authorization_codes_session_id'))
        batch_op.drop_index(batch_op.f('ix_authorization_codes_expires_at'))
        batch_op.drop_index(batch_op.f('ix_authorization_codes_application_id'))

    op.drop_table('authorization_codes')
    with op.batch_alter_table('consents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_consents_application_id'))

    op.drop_table('consents')
    with op.batch_alter_table('application_users', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_application_users_user_id'))

    op.drop_table('application_users')
    with op.batch_alter_table('application_providers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_application_providers_provider_id'))

    op.drop_table('application_providers')
    op.drop_table('applications')
