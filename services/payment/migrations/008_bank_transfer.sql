-- How a deposit is paid, and for a Japanese bank transfer where the patient
-- transfers it and what is still owed after partial transfers.
ALTER TABLE payments ADD COLUMN method text NOT NULL DEFAULT 'card' CHECK (method IN ('card', 'bank_transfer'));
ALTER TABLE payments ADD COLUMN transfer jsonb;
ALTER TABLE payments DROP CONSTRAINT payments_status_check;
ALTER TABLE payments ADD CONSTRAINT payments_status_check CHECK (status IN ('creating', 'requires_payment', 'processing',
    'requires_action', 'awaiting_transfer', 'failed', 'succeeded'));
