-- The clinic's cancellation policy, from the catalog's snapshots, and the
-- terms each quote fixes with its price. Quotes issued before this carry
-- none ({}): their bookings keep what they paid less nothing.
ALTER TABLE treatments ADD COLUMN cancellation_policy jsonb NOT NULL
    DEFAULT '{"version": 1, "cancellation_fee": {"amount": 100000, "currency": "JPY"}}';
ALTER TABLE quotes ADD COLUMN cancellation_terms jsonb NOT NULL DEFAULT '{}';
