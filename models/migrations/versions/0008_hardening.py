"""hardening: request nonces (replay refusal), card post attempts and fallback marks, indexes for the ticket rate
limits and the delivery worker's queries

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26 09:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

PENDING = sa.text("status = 'pending'")


def upgrade() -> None:
    op.create_table('request_nonces',
    sa.Column('key', sa.String(length=100), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('seen_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_request_nonces'))
    )
    with op.batch_alter_table('request_nonces', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_request_nonces_seen_at'), ['seen_at'], unique=False)
    with op.batch_alter_table('ticket_cards', schema=None) as batch_op:
        batch_op.add_column(sa.Column('posting_since', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('fallback_from', sa.String(length=64), nullable=True))
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.create_index('ix_tickets_reporter_created', ['reporter_id', 'created_at'], unique=False)
        batch_op.create_index('ix_tickets_channel_created', ['channel', 'created_at'], unique=False)
    # The delivery worker reads only pending rows, among many sent ones: partial indexes keep its queries on them.
    op.create_index('ix_outbox_pending_chat', 'outbox', ['channel', 'chat_id', 'priority', 'id'], unique=False,
                    postgresql_where=PENDING, sqlite_where=PENDING)
    op.create_index('ix_outbox_pending_ticket', 'outbox', ['ticket_id'], unique=False,
                    postgresql_where=PENDING, sqlite_where=PENDING)


def downgrade() -> None:
    op.drop_index('ix_outbox_pending_ticket', table_name='outbox')
    op.drop_index('ix_outbox_pending_chat', table_name='outbox')
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_index('ix_tickets_channel_created')
        batch_op.drop_index('ix_tickets_reporter_created')
    with op.batch_alter_table('ticket_cards', schema=None) as batch_op:
        batch_op.drop_column('fallback_from')
        batch_op.drop_column('posting_since')
    with op.batch_alter_table('request_nonces', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_request_nonces_seen_at'))
    op.drop_table('request_nonces')
