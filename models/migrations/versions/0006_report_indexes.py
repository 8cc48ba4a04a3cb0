"""service reports: indexes for a period's tickets (created) and events (when)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 09:00:00
"""
from alembic import op


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_tickets_created_at', 'tickets', ['created_at'], unique=False)
    op.create_index('ix_ticket_events_at', 'ticket_events', ['at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_ticket_events_at', table_name='ticket_events')
    op.drop_index('ix_tickets_created_at', table_name='tickets')
