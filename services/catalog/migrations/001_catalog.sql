CREATE TABLE clinics (
    id                text PRIMARY KEY,
    name              text NOT NULL,
    name_ja           text NOT NULL DEFAULT '',
    city              text NOT NULL CHECK (city IN ('tokyo', 'osaka', 'kyoto')),
    mhlw_registration text NOT NULL,
    languages         text[] NOT NULL DEFAULT '{}',
    content_hash      text NOT NULL,
    updated_at        timestamptz NOT NULL DEFAULT now()
);

-- Regenerative medicine provision plans notified to the MHLW, one per therapy.
CREATE TABLE plans (
    number       text PRIMARY KEY,
    clinic_id    text NOT NULL REFERENCES clinics (id),
    risk_class   text NOT NULL CHECK (risk_class IN ('I', 'II', 'III')),
    therapy      text NOT NULL,
    committee    text NOT NULL,
    cpc_name     text NOT NULL,
    cpc_in_house boolean NOT NULL,
    valid_from   date NOT NULL,
    valid_until  date NOT NULL CHECK (valid_until >= valid_from),
    status       text NOT NULL CHECK (status IN ('active', 'suspended', 'withdrawn')),
    content_hash text NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE treatments (
    id                             text PRIMARY KEY,
    clinic_id                      text NOT NULL REFERENCES clinics (id),
    plan_number                    text NOT NULL REFERENCES plans (number),
    name                           text NOT NULL,
    condition                      text NOT NULL,
    description                    text NOT NULL DEFAULT '',
    cell_source                    text NOT NULL,
    autologous                     boolean NOT NULL,
    routes                         text[] NOT NULL,
    sessions                       integer NOT NULL CHECK (sessions > 0),
    culture_days_min               integer NOT NULL CHECK (culture_days_min >= 0),
    culture_days_max               integer NOT NULL CHECK (culture_days_max >= culture_days_min),
    consultation_jpy               bigint NOT NULL CHECK (consultation_jpy >= 0),
    harvest_jpy                    bigint NOT NULL CHECK (harvest_jpy >= 0),
    quality_testing_jpy            bigint NOT NULL CHECK (quality_testing_jpy >= 0),
    administration_per_session_jpy bigint NOT NULL CHECK (administration_per_session_jpy > 0),
    -- revision grows on every change; published_revision is the last one
    -- written to the outbox, so a change is announced exactly once.
    content_hash                   text NOT NULL,
    revision                       bigint NOT NULL DEFAULT 1,
    published_revision             bigint NOT NULL DEFAULT 0,
    updated_at                     timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX treatments_condition ON treatments (condition);
CREATE INDEX treatments_clinic ON treatments (clinic_id);

CREATE TABLE dose_options (
    treatment_id text NOT NULL REFERENCES treatments (id) ON DELETE CASCADE,
    cells        bigint NOT NULL CHECK (cells > 0),
    culture_jpy  bigint NOT NULL CHECK (culture_jpy > 0),
    PRIMARY KEY (treatment_id, cells)
);
