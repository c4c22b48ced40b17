-- Booking accepts a quote synchronously before it stores the booking; the
-- Idempotency-Key of that booking request makes a retried acceptance answer
-- with the booking id it was first given.
ALTER TABLE quotes ADD COLUMN acceptance_key text NOT NULL DEFAULT '';
