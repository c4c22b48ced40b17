-- What each booking owes, fixed when its deposit is requested.
CREATE TABLE payment_plans (
    booking_id    uuid PRIMARY KEY,
    clinic_id     text NOT NULL,
    currency      text NOT NULL,
    deposit_due   bigint NOT NULL CHECK (deposit_due > 0),
    -- Zero when the clinic takes the whole price with the deposit.
    balance_due   bigint NOT NULL CHECK (balance_due >= 0),
    customer_id   text NOT NULL DEFAULT '',
    -- Set when the cells failed QC: the balance will never be charged.
    balance_cancelled_at timestamptz,
    patient_name  text NOT NULL,
    patient_email text NOT NULL,
    created_at    timestamptz NOT NULL
);

CREATE TABLE payments (
    id                uuid PRIMARY KEY,
    booking_id        uuid NOT NULL REFERENCES payment_plans (booking_id),
    clinic_id         text NOT NULL,
    stage             text NOT NULL CHECK (stage IN ('deposit', 'balance')),
    amount            bigint NOT NULL CHECK (amount > 0),
    currency          text NOT NULL,
    status            text NOT NULL CHECK (status IN ('creating', 'requires_payment', 'processing',
                          'requires_action', 'failed', 'succeeded')),
    payment_intent_id text UNIQUE,
    client_secret     text NOT NULL DEFAULT '',
    customer_id       text NOT NULL DEFAULT '',
    payment_method_id text NOT NULL DEFAULT '',
    amount_received   bigint NOT NULL DEFAULT 0,
    failure_code      text NOT NULL DEFAULT '',
    failure_message   text NOT NULL DEFAULT '',
    last_event_at     timestamptz,
    succeeded_at      timestamptz,
    -- The trace the payment was created in; webhooks continue it.
    trace             jsonb NOT NULL DEFAULT '{}',
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    UNIQUE (booking_id, stage)
);

-- Every Stripe webhook event received, once: the primary key deduplicates
-- redeliveries, and finance can see exactly what Stripe reported and when.
CREATE TABLE stripe_events (
    id                text PRIMARY KEY,
    type              text NOT NULL,
    payment_intent_id text NOT NULL DEFAULT '',
    created_at        timestamptz NOT NULL,
    received_at       timestamptz NOT NULL DEFAULT now(),
    outcome           text NOT NULL,
    payload           jsonb NOT NULL
);
