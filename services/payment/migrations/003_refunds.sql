-- Money returned to patients: one row per payment refunded for a cause
-- (the booking event that asked), so a redelivered event finds its refunds.
CREATE TABLE refunds (
    id                uuid PRIMARY KEY,
    booking_id        uuid NOT NULL REFERENCES payment_plans (booking_id),
    clinic_id         text NOT NULL,
    payment_id        uuid NOT NULL REFERENCES payments (id),
    stage             text NOT NULL CHECK (stage IN ('deposit', 'balance')),
    cause             text NOT NULL,
    amount            bigint NOT NULL CHECK (amount > 0),
    currency          text NOT NULL,
    status            text NOT NULL CHECK (status IN ('creating', 'pending', 'requires_action', 'succeeded',
                          'failed', 'canceled')),
    stripe_refund_id  text UNIQUE,
    payment_intent_id text NOT NULL,
    failure_reason    text NOT NULL DEFAULT '',
    last_event_at     timestamptz,
    succeeded_at      timestamptz,
    trace             jsonb NOT NULL DEFAULT '{}',
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    UNIQUE (cause, payment_id)
);

CREATE INDEX refunds_booking ON refunds (booking_id);
CREATE INDEX refunds_payment ON refunds (payment_id);

