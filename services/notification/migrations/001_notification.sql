-- Read model of bookings: who to write to and about what. Fed by every
-- booking.v1 event (each carries the whole booking).
CREATE TABLE bookings (
    id               uuid PRIMARY KEY,
    clinic_id        text NOT NULL,
    clinic_name      text NOT NULL,
    treatment_name   text NOT NULL,
    patient_name     text NOT NULL,
    patient_email    text NOT NULL,
    patient_language text NOT NULL,
    status           text NOT NULL,
    total_jpy        bigint NOT NULL,
    deposit_jpy      bigint NOT NULL,
    balance_jpy      bigint NOT NULL,
    updated_at       timestamptz NOT NULL DEFAULT now()
);

-- Emails to send. The id is deterministic (booking and template), so a
-- decision taken twice queues one email; the sender marks rows sent.
CREATE TABLE emails (
    id              text PRIMARY KEY,
    booking_id      uuid NOT NULL,
    template        text NOT NULL,
    language        text NOT NULL,
    to_address      text NOT NULL,
    subject         text NOT NULL,
    body            text NOT NULL,
    status          text NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text NOT NULL DEFAULT '',
    trace           jsonb NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz
);

CREATE INDEX emails_due ON emails (next_attempt_at) WHERE status = 'pending';

CREATE FUNCTION emails_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(TG_TABLE_SCHEMA || '_emails', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER emails_notify AFTER INSERT ON emails
    FOR EACH STATEMENT EXECUTE FUNCTION emails_notify();
