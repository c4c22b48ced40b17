-- A balance the off-session charge could not take waits for the patient:
-- the booking is balance_action_required until paid, reminded daily, and
-- cancelled under its policy at balance_action_due_at.
ALTER TABLE bookings DROP CONSTRAINT bookings_status_check;
ALTER TABLE bookings ADD CONSTRAINT bookings_status_check CHECK (status IN ('awaiting_deposit', 'confirmed', 'culturing',
    'awaiting_balance', 'balance_action_required', 'ready_for_administration', 'administered', 'qc_failed', 'cancelled',
    'expired'));
ALTER TABLE bookings ADD COLUMN balance_action_due_at timestamptz;
ALTER TABLE bookings ADD COLUMN last_reminder_at timestamptz;
CREATE INDEX bookings_balance_action ON bookings (balance_action_due_at) WHERE status = 'balance_action_required';
