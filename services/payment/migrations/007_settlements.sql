-- The platform's commission on each clinic's bookings, in basis points of
-- what is collected (1000 = 10 %), set by operators.
CREATE TABLE clinic_commissions (
    clinic_id  text PRIMARY KEY,
    rate_bp    integer NOT NULL CHECK (rate_bp BETWEEN 0 AND 5000),
    updated_at timestamptz NOT NULL,
    updated_by text NOT NULL
);

-- A clinic's settlement statement for a month, once closed: its bookings'
-- collected money was released to the clinic (less the commission) by one
-- settlement ledger transaction per booking.
CREATE TABLE settlements (
    clinic_id  text NOT NULL,
    period     text NOT NULL CHECK (period ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'),
    rate_bp    integer NOT NULL,
    closed_at  timestamptz NOT NULL,
    closed_by  text NOT NULL,
    PRIMARY KEY (clinic_id, period)
);

CREATE INDEX ledger_transactions_clinic ON ledger_transactions (clinic_id, occurred_at) WHERE booking_id IS NOT NULL;
