-- Chargebacks: one row per Stripe dispute, on the payment whose charge it
-- disputes. While open (or lost) it holds the clinic's settlement of the
-- booking; the money it moved is in the ledger, per balance transaction.
CREATE TABLE disputes (
    id            text PRIMARY KEY,
    booking_id    uuid NOT NULL REFERENCES payment_plans (booking_id),
    clinic_id     text NOT NULL,
    payment_id    uuid NOT NULL REFERENCES payments (id),
    charge_id     text NOT NULL DEFAULT '',
    amount        bigint NOT NULL CHECK (amount >= 0),
    currency      text NOT NULL,
    status        text NOT NULL CHECK (status IN ('open', 'won', 'lost', 'warning_closed')),
    reason        text NOT NULL DEFAULT '',
    fee           bigint NOT NULL DEFAULT 0,
    opened_at     timestamptz NOT NULL,
    closed_at     timestamptz,
    last_event_at timestamptz NOT NULL
);

CREATE INDEX disputes_booking ON disputes (booking_id);
CREATE INDEX disputes_status ON disputes (status, opened_at);
