"""inbound receipts (retry dedupe), shared API tokens, reply windows

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 15:35:50.992413
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('api_tokens',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('value', sa.String(length=1024), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_api_tokens'))
    )
    op.create_table('inbound_receipts',
    sa.Column('key', sa.String(length=160), nullable=False),
    sa.Column('chat_id', sa.String(length=128), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('reply', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_inbound_receipts'))
    )
    with op.batch_alter_table('inbound_receipts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_inbound_receipts_created_at'), ['created_at'], unique=False)

    op.create_table('service_windows',
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('chat_id', sa.String(length=128), nullable=False),
    sa.Column('message_at', sa.DateTime(), nullable=True),
    sa.Column('message_used', sa.Integer(), nullable=False),
    sa.Column('event_at', sa.DateTime(), nullable=True),
    sa.Column('event_used', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('channel', 'chat_id', name=op.f('pk_service_windows'))
    )


def downgrade() -> None:
    op.drop_table('service_windows')
    with op.batch_alter_table('inbound_receipts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_inbound_receipts_created_at'))

    op.drop_table('inbound_receipts')
    op.drop_table('api_tokens')
