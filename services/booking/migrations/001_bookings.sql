CREATE TABLE bookings (
    id                  uuid PRIMARY KEY,
    -- The client's Idempotency-Key: the same key always answers with the
    -- same booking.
    idempotency_key     text NOT NULL UNIQUE,
    -- A quote is booked at most once.
    quote_id            uuid NOT NULL UNIQUE,
    treatment_id        text NOT NULL,
    treatment_name      text NOT NULL,
    clinic_id           text NOT NULL,
    clinic_name         text NOT NULL,
    dose_cells          bigint NOT NULL,
    -- False for protocols with nothing to harvest (banked donor cells, exosomes).
    requires_harvest    boolean NOT NULL DEFAULT true,
    patient_name        text NOT NULL,
    patient_email       text NOT NULL,
    patient_country     text NOT NULL,
    patient_language    text NOT NULL,
    status              text NOT NULL CHECK (status IN ('awaiting_deposit', 'confirmed', 'culturing',
                            'awaiting_balance', 'ready_for_administration', 'administered', 'qc_failed')),
    total_jpy           bigint NOT NULL,
    deposit_jpy         bigint NOT NULL CHECK (deposit_jpy > 0),
    balance_jpy         bigint NOT NULL CHECK (balance_jpy >= 0),
    deposit_payment_id  text NOT NULL DEFAULT '',
    balance_payment_id  text NOT NULL DEFAULT '',
    balance_failure     text NOT NULL DEFAULT '',
    harvested_at        timestamptz,
    cells_ready_at      timestamptz,
    administered_at     timestamptz,
    qc_cell_count       bigint,
    qc_viability_bp     integer,
    qc_sterility_passed boolean,
    qc_endotoxin_passed boolean,
    trace               jsonb NOT NULL DEFAULT '{}',
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    CHECK (total_jpy = deposit_jpy + balance_jpy)
);

CREATE INDEX bookings_clinic ON bookings (clinic_id, created_at);

-- Every state change, for audit and support.
CREATE TABLE booking_transitions (
    booking_id  uuid NOT NULL REFERENCES bookings (id),
    seq         bigserial,
    from_status text NOT NULL,
    to_status   text NOT NULL,
    cause       text NOT NULL,
    at          timestamptz NOT NULL,
    PRIMARY KEY (booking_id, seq)
);
