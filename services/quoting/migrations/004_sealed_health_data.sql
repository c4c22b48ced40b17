-- Screening answers and eligibility reasons are health information: they
-- are stored sealed (envelope encryption with Tink, pkg/sealed), bound to
-- their quote. Rows written before are sealed by quoting at start, and
-- their clear-text columns emptied.
ALTER TABLE quotes ADD COLUMN screening_sealed bytea;
ALTER TABLE quotes ADD COLUMN eligibility_sealed bytea;
ALTER TABLE quotes ALTER COLUMN eligibility DROP NOT NULL;

-- Who read whose health information, when: every read by a clinic or an
-- operator. Rows are only ever added.
CREATE TABLE audit_log (
    seq       bigserial PRIMARY KEY,
    at        timestamptz NOT NULL DEFAULT now(),
    subject   text NOT NULL,
    role      text NOT NULL,
    clinic_id text NOT NULL DEFAULT '',
    action    text NOT NULL,
    record    text NOT NULL
);
CREATE INDEX audit_log_record ON audit_log (record, at);
