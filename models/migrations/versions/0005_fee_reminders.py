"""fee reminder log (one per bill, kind and round); job runs (once across workers); duplicate hints and followers of merged tickets

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 16:35:46.916608
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('ticket_followers',
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_ticket_followers_person_id_people')),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_ticket_followers_ticket_id_tickets')),
    sa.PrimaryKeyConstraint('ticket_id', 'person_id', name=op.f('pk_ticket_followers'))
    )
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('possible_duplicate_of', sa.String(length=32), nullable=True))
    op.create_table('job_runs',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('run_key', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('name', 'run_key', name=op.f('pk_job_runs'))
    )
    op.create_table('fee_reminders',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('bill_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('round', sa.String(length=16), nullable=False),
    sa.Column('recipients', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['bill_id'], ['bills.id'], name=op.f('fk_fee_reminders_bill_id_bills')),
    sa.ForeignKeyConstraint(['unit_id'], ['units.id'], name=op.f('fk_fee_reminders_unit_id_units')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fee_reminders')),
    sa.UniqueConstraint('bill_id', 'kind', 'round', name=op.f('uq_fee_reminders_bill_id'))
    )
    with op.batch_alter_table('fee_reminders', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_fee_reminders_unit_id'), ['unit_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_column('possible_duplicate_of')
    with op.batch_alter_table('fee_reminders', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_fee_reminders_unit_id'))

    op.drop_table('fee_reminders')
    op.drop_table('job_runs')
    op.drop_table('ticket_followers')
