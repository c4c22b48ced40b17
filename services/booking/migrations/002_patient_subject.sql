-- A booking belongs to the patient who made it (the token's subject), and
-- an Idempotency-Key is that patient's: another caller's key never finds,
-- returns or names their booking.
ALTER TABLE bookings ADD COLUMN patient_subject text NOT NULL DEFAULT '';
ALTER TABLE bookings DROP CONSTRAINT bookings_idempotency_key_key;
ALTER TABLE bookings ADD CONSTRAINT bookings_caller_idempotency_key UNIQUE (patient_subject, idempotency_key);
