-- How the patient pays the deposit: by card, or by Japanese bank transfer.
ALTER TABLE bookings ADD COLUMN deposit_method text NOT NULL DEFAULT 'card' CHECK (deposit_method IN ('card', 'bank_transfer'));
