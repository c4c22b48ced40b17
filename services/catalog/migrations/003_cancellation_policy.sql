-- Each clinic's cancellation policy: the fee a patient pays who cancels
-- before the harvest (tax included), with a version that grows with every
-- change. Clinics that set none have the platform's default.
ALTER TABLE clinics ADD COLUMN cancellation_policy jsonb NOT NULL
    DEFAULT '{"version": 1, "cancellation_fee": {"amount": 100000, "currency": "JPY"}}';
