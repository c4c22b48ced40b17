-- Cancellations: the terms the booking was made under (from its quote) and,
-- once cancelled, what was refunded, kept and why.
ALTER TABLE bookings DROP CONSTRAINT bookings_status_check;
ALTER TABLE bookings ADD CONSTRAINT bookings_status_check CHECK (status IN ('awaiting_deposit', 'confirmed', 'culturing',
    'awaiting_balance', 'ready_for_administration', 'administered', 'qc_failed', 'cancelled'));
-- Bookings made before terms existed carry none ({}): they keep nothing.
ALTER TABLE bookings ADD COLUMN cancellation_terms jsonb NOT NULL DEFAULT '{}';
ALTER TABLE bookings ADD COLUMN cancellation jsonb;
