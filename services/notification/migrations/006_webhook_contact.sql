-- Whom to tell when an endpoint is disabled for failing: the address the
-- clinic gave at registration. Such an email is about an endpoint, neither
-- a booking nor a quote.
ALTER TABLE webhook_endpoints ADD COLUMN contact_email text NOT NULL DEFAULT '';
ALTER TABLE emails ADD COLUMN endpoint_id uuid;
ALTER TABLE emails DROP CONSTRAINT emails_about_something;
ALTER TABLE emails ADD CONSTRAINT emails_about_something
    CHECK (booking_id IS NOT NULL OR quote_id IS NOT NULL OR endpoint_id IS NOT NULL);
