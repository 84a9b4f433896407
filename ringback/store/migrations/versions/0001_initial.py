"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-27 21:30:09.280588
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('accounts',
    sa.Column('sid', sa.String(length=34), nullable=False),
    sa.Column('friendly_name', sa.String(length=64), nullable=False),
    sa.Column('auth_token', sa.String(length=32), nullable=False),
    sa.Column('status', sa.Integer(), nullable=False),
    sa.Column('date_created', sa.DateTime(timezone=True), nullable=False),
    sa.Column('date_updated', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('sid')
    )
    op.create_table('caller_ids',
    sa.Column('sid', sa.String(length=34), nullable=False),
    sa.Column('account_sid', sa.String(length=34), nullable=False),
    sa.Column('phone_number', sa.String(length=20), nullable=False),
    sa.Column('friendly_name', sa.String(length=64), nullable=False),
    sa.Column('date_created', sa.DateTime(timezone=True), nullable=False),
    sa.Column('date_updated', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('sid')
    )
    with op.batch_alter_table('caller_ids', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_caller_ids_phone_number'), ['phone_number'], unique=False)
        batch_op.create_index('ux_caller_ids_acct_number', ['account_sid', 'phone_number'], unique=True)

    op.create_table('calls',
    sa.Column('sid', sa.String(length=34), nullable=False),
    sa.Column('account_sid', sa.String(length=34), nullable=False),
    sa.Column('parent_sid', sa.String(length=34), nullable=True),
    sa.Column('call_segment_sid', sa.String(length=34), nullable=True),
    sa.Column('called', sa.String(length=20), nullable=False),
    sa.Column('caller', sa.String(length=20), nullable=False),
    sa.Column('phone_number_sid', sa.String(length=34), nullable=True),
    sa.Column('status', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('flags', sa.Integer(), nullable=False),
    sa.Column('url', sa.String(length=2048), nullable=True),
    sa.Column('method', sa.String(length=8), nullable=False),
    sa.Column('send_digits', sa.String(length=32), nullable=True),
    sa.Column('if_machine', sa.String(length=8), nullable=True),
    sa.Column('timeout', sa.Integer(), nullable=False),
    sa.Column('start_time', sa.DateTime(timezone=True), nullable=True),
    sa.Column('end_time', sa.DateTime(timezone=True), nullable=True),
    sa.Column('duration', sa.Integer(), nullable=True),
    sa.Column('price', sa.String(length=16), nullable=True),
    sa.Column('dial_status', sa.String(length=20), nullable=True),
    sa.Column('sip_response_code', sa.Integer(), nullable=True),
    sa.Column('claimed_by', sa.String(length=64), nullable=True),
    sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('redirect_url', sa.String(length=2048), nullable=True),
    sa.Column('redirect_method', sa.String(length=8), nullable=True),
    sa.Column('date_created', sa.DateTime(timezone=True), nullable=False),
    sa.Column('date_updated', sa.DateTime(timezone=True), nullable=False),
    sa.Column('annotation', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('sid')
    )
    with op.batch_alter_table('calls', schema=None) as batch_op:
        batch_op.create_index('ix_calls_acct_called', ['account_sid', 'called', 'date_updated'], unique=False)
        batch_op.create_index('ix_calls_acct_caller', ['account_sid', 'caller', 'date_updated'], unique=False)
        batch_op.create_index('ix_calls_acct_start', ['account_sid', 'start_time'], unique=False)
        batch_op.create_index('ix_calls_acct_status', ['account_sid', 'status', 'date_updated'], unique=False)
        batch_op.create_index('ix_calls_acct_updated', ['account_sid', 'date_updated', 'sid'], unique=False)
        batch_op.create_index('ix_calls_parent', ['parent_sid'], unique=False)
        batch_op.create_index('ix_calls_state_created', ['state', 'date_created'], unique=False)

    op.create_table('conferences',
    sa.Column('sid', sa.String(length=34), nullable=False),
    sa.Column('account_sid', sa.String(length=34), nullable=False),
    sa.Column('friendly_name', sa.String(length=128), nullable=False),
    sa.Column('status', sa.Integer(), nullable=False),
    sa.Column('date_created', sa.DateTime(timezone=True), nullable=False),
    sa.Column('date_updated', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('sid')
    )
    with op.batch_alter_table('conferences', schema=None) as batch_op:
        batch_op.create_index('ix_conferences_acct_updated', ['account_sid', 'date_updated'], unique=False)

    op.create_table('counts',
    sa.Column('account_sid', sa.String(length=34), nullable=False),
    sa.Column('resource', sa.String(length=16), nullable=False),
    sa.Column('dim', sa.String(length=16), nullable=False),
    sa.Column('value', sa.String(length=32), nullable=False),
    sa.Column('n', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('account_sid', 'resource', 'dim', 'value')
    )
    op.create_table('incoming_numbers',
    sa.Column('sid', sa.String(length=34), nullable=False),
    sa.Column('account_sid', sa.String(length=34), nullable=False),
    sa.Column('phone_number', sa.String(length=20), nullable=False),
    sa.Column('friendly_name', sa.String(length=64), nullable=False),
    sa.Column('url', sa.String(length=2048), nullable=True),
    sa.Column('method', sa.String(length=8), nullable=False),
    sa.Column('voice_fallback_url', sa.String(length=2048), nullable=True),
    sa.Column('voice_fallback_method', sa.String(length=8), nullable=False),
    sa.Column('voice_caller_id_lookup', sa.Boolean(), nullable=False),
    sa.Column('sms_url', sa.String(length=2048), nullable=True),
    sa.Column('sms_method', sa.String(length=8), nullable=False),
    sa.Column('sms_fallback_url', sa.String(length=2048), nullable=True),
    sa.Column('sms_fallback_method', sa.String(length=8), nullable=False),
    sa.Column('date_created', sa.DateTime(timezone=True), nullable=False),
    sa.Column('date_updated', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('sid'),
    sa.UniqueConstraint('phone_number')
    )
    with op.batch_alter_table('incoming_numbers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incoming_numbers_account_sid'), ['account_sid'], unique=False)

    op.create_table('notifications',
    sa.Column('sid', sa.String(length=34), nullable=False),
    sa.Column('account_sid', sa.String(length=34), nullable=False),
    sa.Column('call_sid', sa.String(length=34), nullable=True),
    sa.Column('log', sa.Integer(), nullable=False),
    sa.Column('error_code', sa.String(length=8), nullable=False),
    sa.Column('more_info', sa.String(length=256), nullable=False),
    sa.Column('message_text', sa.Text(), nullable=False),
    sa.Column('message_date', sa.DateTime(timezone=True), nullable=False),
    sa.Column('request_url', sa.Text(), nullable=False),
    sa.Column('request_method', sa.String(length=8), nullable=False),
    sa.Column('request_variables', sa.Text(), nullable=False),
    sa.Column('response_headers', sa.Text(), nullable=False),
    sa.Column('response_body', sa.Text(), nullable=False),
    sa.Column('date_created', sa.DateTime(timezone=True), nullable=False),
    sa.Column('date_updated', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('sid')
    )
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.create_index('ix_notifications_acct_date', ['account_sid', 'message_date'], unique=False)
        batch_op.create_index('ix_notifications_acct_log', ['account_sid', 'log', 'message_date'], unique=False)
        batch_op.create_index(batch_op.f('ix_notifications_call_sid'), ['call_sid'], unique=False)

    op.create_table('participants',
    sa.Column('conference_sid', sa.String(length=34), nullable=False),
    sa.Column('call_sid', sa.String(length=34), nullable=False),
    sa.Column('account_sid', sa.String(length=34), nullable=False),
    sa.Column('muted', sa.Boolean(), nullable=False),
    sa.Column('start_conference_on_enter', sa.Boolean(), nullable=False),
    sa.Column('end_conference_on_exit', sa.Boolean(), nullable=False),
    sa.Column('date_created', sa.DateTime(timezone=True), nullable=False),
    sa.Column('date_updated', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('conference_sid', 'call_sid')
    )
    op.create_table('recordings',
    sa.Column('sid', sa.String(length=34), nullable=False),
    sa.Column('account_sid', sa.String(length=34), nullable=False),
    sa.Column('call_sid', sa.String(length=34), nullable=True),
    sa.Column('duration', sa.Integer(), nullable=False),
    sa.Column('path', sa.String(length=1024), nullable=False),
    sa.Column('date_created', sa.DateTime(timezone=True), nullable=False),
    sa.Column('date_updated', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('sid')
    )
    with op.batch_alter_table('recordings', schema=None) as batch_op:
        batch_op.create_index('ix_recordings_acct_created', ['account_sid', 'date_created'], unique=False)
        batch_op.create_index(batch_op.f('ix_recordings_call_sid'), ['call_sid'], unique=False)

    op.create_table('transcriptions',
    sa.Column('sid', sa.String(length=34), nullable=False),
    sa.Column('account_sid', sa.String(length=34), nullable=False),
    sa.Column('recording_sid', sa.String(length=34), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('duration', sa.Integer(), nullable=False),
    sa.Column('transcription_text', sa.Text(), nullable=True),
    sa.Column('price', sa.String(length=16), nullable=True),
    sa.Column('date_created', sa.DateTime(timezone=True), nullable=False),
    sa.Column('date_updated', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('sid')
    )
    with op.batch_alter_table('transcriptions', schema=None) as batch_op:
        batch_op.create_index('ix_transcriptions_acct_updated', ['account_sid', 'date_updated'], unique=False)
        batch_op.create_index(batch_op.f('ix_transcriptions_recording_sid'), ['recording_sid'], unique=False)

    op.create_table('validation_requests',
    sa.Column('sid', sa.String(length=34), nullable=False),
    sa.Column('account_sid', sa.String(length=34), nullable=False),
    sa.Column('phone_number', sa.String(length=20), nullable=False),
    sa.Column('friendly_name', sa.String(length=64), nullable=False),
    sa.Column('call_delay', sa.Integer(), nullable=False),
    sa.Column('validation_code', sa.String(length=6), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('call_sid', sa.String(length=34), nullable=True),
    sa.Column('date_created', sa.DateTime(timezone=True), nullable=False),
    sa.Column('date_updated', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('sid')
    )
    with op.batch_alter_table('validation_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_validation_requests_account_sid'), ['account_sid'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('validation_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_validation_requests_account_sid'))

    op.drop_table('validation_requests')
    with op.batch_alter_table('transcriptions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_transcriptions_recording_sid'))
        batch_op.drop_index('ix_transcriptions_acct_updated')

    op.drop_table('transcriptions')
    with op.batch_alter_table('recordings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_recordings_call_sid'))
        batch_op.drop_index('ix_recordings_acct_created')

    op.drop_table('recordings')
    op.drop_table('participants')
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notifications_call_sid'))
        batch_op.drop_index('ix_notifications_acct_log')
        batch_op.drop_index('ix_notifications_acct_date')

    op.drop_table('notifications')
    with op.batch_alter_table('incoming_numbers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incoming_numbers_account_sid'))

    op.drop_table('incoming_numbers')
    op.drop_table('counts')
    with op.batch_alter_table('conferences', schema=None) as batch_op:
        batch_op.drop_index('ix_conferences_acct_updated')

    op.drop_table('conferences')
    with op.batch_alter_table('calls', schema=None) as batch_op:
        batch_op.drop_index('ix_calls_state_created')
        batch_op.drop_index('ix_calls_parent')
        batch_op.drop_index('ix_calls_acct_updated')
        batch_op.drop_index('ix_calls_acct_status')
        batch_op.drop_index('ix_calls_acct_start')
        batch_op.drop_index('ix_calls_acct_caller')
        batch_op.drop_index('ix_calls_acct_called')

    op.drop_table('calls')
    with op.batch_alter_table('caller_ids', schema=None) as batch_op:
        batch_op.drop_index('ux_caller_ids_acct_number')
        batch_op.drop_index(batch_op.f('ix_caller_ids_phone_number'))

    op.drop_table('caller_ids')
    op.drop_table('accounts')

