"""staff console: sign-in sessions, login throttle, internal notes, classifier corrections; indexes for the
console's keyset pages and search (trigram on PostgreSQL)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 12:00:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0007'
# 0006 (report indexes) is developed on another branch: follow it once it is merged, so there is one head.
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('staff_sessions',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('staff_id', sa.Integer(), nullable=False),
    sa.Column('csrf', sa.String(length=64), nullable=False),
    sa.Column('address', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['staff_id'], ['staff.id'], name=op.f('fk_staff_sessions_staff_id_staff')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_sessions'))
    )
    op.create_index(op.f('ix_staff_sessions_staff_id'), 'staff_sessions', ['staff_id'], unique=False)
    op.create_index(op.f('ix_staff_sessions_expires_at'), 'staff_sessions', ['expires_at'], unique=False)
    op.create_table('login_throttle',
    sa.Column('key', sa.String(length=120), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('window_start', sa.DateTime(), nullable=False),
    sa.Column('locked_until', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_login_throttle'))
    )
    op.create_table('ticket_notes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('staff_id', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['staff_id'], ['staff.id'], name=op.f('fk_ticket_notes_staff_id_staff')),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_ticket_notes_ticket_id_tickets')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ticket_notes'))
    )
    op.create_index(op.f('ix_ticket_notes_ticket_id'), 'ticket_notes', ['ticket_id'], unique=False)
    op.create_table('classifier_corrections',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('estate_id', sa.Integer(), nullable=True),
    sa.Column('staff_id', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('old_kind', sa.String(length=16), nullable=False),
    sa.Column('old_category', sa.String(length=32), nullable=False),
    sa.Column('old_urgency', sa.String(length=16), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('category', sa.String(length=32), nullable=False),
    sa.Column('urgency', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['estate_id'], ['estates.id'], name=op.f('fk_classifier_corrections_estate_id_estates')),
    sa.ForeignKeyConstraint(['staff_id'], ['staff.id'], name=op.f('fk_classifier_corrections_staff_id_staff')),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'],
                            name=op.f('fk_classifier_corrections_ticket_id_tickets')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_classifier_corrections'))
    )
    op.create_index(op.f('ix_classifier_corrections_ticket_id'), 'classifier_corrections', ['ticket_id'],
                    unique=False)
    # Keyset pages: newest first within the staff member's estates, optionally one status.
    op.create_index('ix_tickets_estate_id_id', 'tickets', ['estate_id', 'id'], unique=False)
    op.create_index('ix_tickets_estate_status_id', 'tickets', ['estate_id', 'status', 'id'], unique=False)
    op.create_index('ix_tickets_assignee_id', 'tickets', ['assignee_id', 'id'], unique=False)
    op.create_index('ix_tickets_contact_phone', 'tickets', ['contact_phone'], unique=False)
    op.create_index('ix_tickets_unit_id', 'tickets', ['unit_id'], unique=False)
    if op.get_bind().dialect.name == 'postgresql':
        # Free-text search (description, subject, owner names) with LIKE '%…%' through trigram indexes.
        op.execute('CREATE EXTENSION IF NOT EXISTS pg_trgm')
        op.execute('CREATE INDEX ix_tickets_description_trgm ON tickets USING gin (description gin_trgm_ops)')
        op.execute('CREATE INDEX ix_people_name_trgm ON people USING gin (name gin_trgm_ops)')


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP INDEX IF EXISTS ix_people_name_trgm')
        op.execute('DROP INDEX IF EXISTS ix_tickets_description_trgm')
    for name in ('ix_tickets_unit_id', 'ix_tickets_contact_phone', 'ix_tickets_assignee_id',
                 'ix_tickets_estate_status_id', 'ix_tickets_estate_id_id'):
        op.drop_index(name, table_name='tickets')
    op.drop_table('classifier_corrections')
    op.drop_table('ticket_notes')
    op.drop_table('login_throttle')
    op.drop_table('staff_sessions')
