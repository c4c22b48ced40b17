-- A plan is closed when its booking ended (cancelled, or expired unpaid):
-- nothing more is charged, and a payment that succeeds after all (the
-- patient paid as the deadline passed) is refunded in full.
ALTER TABLE payment_plans ADD COLUMN closed_at timestamptz;
