"""staff-group cards, outbox delivery retries, staff link codes

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 14:49:18.510674
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('ticket_cards',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('group', sa.String(length=64), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('chat_id', sa.String(length=128), nullable=False),
    sa.Column('message_id', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_ticket_cards_ticket_id_tickets')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ticket_cards')),
    sa.UniqueConstraint('ticket_id', 'channel', 'chat_id', name=op.f('uq_ticket_cards_ticket_id'))
    )
    with op.batch_alter_table('ticket_cards', schema=None) as batch_op:
        batch_op.create_index('ix_ticket_cards_message', ['channel', 'chat_id', 'message_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_ticket_cards_ticket_id'), ['ticket_id'], unique=False)

    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=16), nullable=False, server_default='message'))
        batch_op.add_column(sa.Column('priority', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('next_attempt_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('last_error', sa.String(length=500), nullable=False, server_default=''))
        batch_op.create_index('ix_outbox_due', ['status', 'next_attempt_at'], unique=False)

    with op.batch_alter_table('staff', schema=None) as batch_op:
        batch_op.add_column(sa.Column('link_code', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('link_code_expires_at', sa.DateTime(), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_staff_link_code'), ['link_code'])



def downgrade() -> None:
    with op.batch_alter_table('staff', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_staff_link_code'), type_='unique')
        batch_op.drop_column('link_code_expires_at')
        batch_op.drop_column('link_code')

    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_due')
        batch_op.drop_column('last_error')
        batch_op.drop_column('next_attempt_at')
        batch_op.drop_column('priority')
        batch_op.drop_column('kind')

    with op.batch_alter_table('ticket_cards', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ticket_cards_ticket_id'))
        batch_op.drop_index('ix_ticket_cards_message')

    op.drop_table('ticket_cards')
