"""SLA clock: arrive deadline, next check time, escalation level, hold time

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 16:16:25.751268
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('arrive_due_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('next_check_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('escalation_level', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('held_at', sa.DateTime(), nullable=True))
        batch_op.create_index(batch_op.f('ix_tickets_next_check_at'), ['next_check_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tickets_next_check_at'))
        batch_op.drop_column('held_at')
        batch_op.drop_column('escalation_level')
        batch_op.drop_column('next_check_at')
        batch_op.drop_column('arrive_due_at')

