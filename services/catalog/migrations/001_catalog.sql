CREATE TABLE clinics (
    id                text PRIMARY KEY,
    names             jsonb NOT NULL,
    kind              text NOT NULL CHECK (kind IN ('clinic', 'university_hospital')),
    city              text NOT NULL CHECK (city IN ('tokyo', 'osaka', 'kyoto')),
    mhlw_registration text NOT NULL,
    languages         text[] NOT NULL DEFAULT '{}',
    deposit_policy    jsonb NOT NULL,
    extras            jsonb NOT NULL DEFAULT '[]',
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
    names                          jsonb NOT NULL,
    descriptions                   jsonb NOT NULL,
    conditions                     text[] NOT NULL,
    cell_type                      text NOT NULL,
    cell_source                    text NOT NULL,
    autologous                     boolean NOT NULL,
    routes                         text[] NOT NULL,
    sessions                       integer NOT NULL CHECK (sessions > 0),
    culture_days_min               integer NOT NULL CHECK (culture_days_min >= 0),
    culture_days_max               integer NOT NULL CHECK (culture_days_max >= culture_days_min),
    visits                         integer NOT NULL CHECK (visits IN (1, 2)),
    typical_stay_days              integer NOT NULL,
    follow_up_months               integer[] NOT NULL DEFAULT '{}',
    included                       text[] NOT NULL DEFAULT '{}',
    consultation_jpy               bigint NOT NULL CHECK (consultation_jpy >= 0),
    harvest_jpy                    bigint NOT NULL CHECK (harvest_jpy >= 0),
    quality_testing_jpy            bigint NOT NULL CHECK (quality_testing_jpy >= 0),
    administration_per_session_jpy bigint NOT NULL CHECK (administration_per_session_jpy >= 0),
    eligibility                    jsonb NOT NULL,
    -- Set for clinical trials: listed, never sold.
    trial                          jsonb,
    content_hash                   text NOT NULL,
    -- revision grows on every change (of the treatment, its plan or its
    -- clinic); published_revision is the last one written to the outbox, so
    -- a change is announced exactly once.
    revision                       bigint NOT NULL DEFAULT 1,
    published_revision             bigint NOT NULL DEFAULT 0,
    updated_at                     timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX treatments_clinic ON treatments (clinic_id);
CREATE INDEX treatments_plan ON treatments (plan_number);

CREATE TABLE dose_options (
    treatment_id text NOT NULL REFERENCES treatments (id) ON DELETE CASCADE,
    cells        bigint NOT NULL CHECK (cells > 0),
    culture_jpy  bigint NOT NULL CHECK (culture_jpy > 0),
    PRIMARY KEY (treatment_id, cells)
);

-- Every replica keeps a search index in memory; a change anywhere tells
-- them all to rebuild it.
CREATE FUNCTION catalog_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(TG_TABLE_SCHEMA || '_changed', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER clinics_changed AFTER INSERT OR UPDATE OR DELETE ON clinics FOR EACH STATEMENT EXECUTE FUNCTION catalog_changed();
CREATE TRIGGER plans_changed AFTER INSERT OR UPDATE OR DELETE ON plans FOR EACH STATEMENT EXECUTE FUNCTION catalog_changed();
CREATE TRIGGER treatments_changed AFTER INSERT OR UPDATE OR DELETE ON treatments FOR EACH STATEMENT EXECUTE FUNCTION catalog_changed();
