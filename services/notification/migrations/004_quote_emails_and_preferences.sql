-- The quote email is about a quote, not yet a booking: an email names one
-- or the other.
ALTER TABLE emails ALTER COLUMN booking_id DROP NOT NULL;
ALTER TABLE emails ADD COLUMN quote_id uuid;
ALTER TABLE emails ADD CONSTRAINT emails_about_something CHECK (booking_id IS NOT NULL OR quote_id IS NOT NULL);
CREATE INDEX emails_by_booking ON emails (booking_id) WHERE booking_id IS NOT NULL;
CREATE INDEX emails_by_quote ON emails (quote_id) WHERE quote_id IS NOT NULL;

-- A patient's own settings, keyed by their identity at the issuer:
-- language overrides the quote's; declined lists optional emails not wanted.
CREATE TABLE notification_preferences (
    patient_subject text PRIMARY KEY,
    language        text NOT NULL DEFAULT '',
    declined        text[] NOT NULL DEFAULT '{}',
    updated_at      timestamptz NOT NULL DEFAULT now()
);
