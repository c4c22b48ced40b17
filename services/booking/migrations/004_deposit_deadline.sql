-- An unpaid booking expires at its deposit deadline.
ALTER TABLE bookings DROP CONSTRAINT bookings_status_check;
ALTER TABLE bookings ADD CONSTRAINT bookings_status_check CHECK (status IN ('awaiting_deposit', 'confirmed', 'culturing',
    'awaiting_balance', 'ready_for_administration', 'administered', 'qc_failed', 'cancelled', 'expired'));
-- Bookings from before deadlines get three days from now.
ALTER TABLE bookings ADD COLUMN deposit_due_at timestamptz NOT NULL DEFAULT now() + interval '72 hours';
ALTER TABLE bookings ALTER COLUMN deposit_due_at DROP DEFAULT;
CREATE INDEX bookings_awaiting_deposit ON bookings (deposit_due_at) WHERE status = 'awaiting_deposit';
-- A quote is booked at most once, except that a booking which expired unpaid
-- gives it back (quoting releases it) for the patient to book again.
ALTER TABLE bookings DROP CONSTRAINT bookings_quote_id_key;
CREATE UNIQUE INDEX bookings_quote_id_key ON bookings (quote_id) WHERE status <> 'expired';
