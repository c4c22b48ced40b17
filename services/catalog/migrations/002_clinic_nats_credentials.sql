-- Each clinic's NATS credentials, issued and revoked by operators through
-- the admin API. The seed of each user key stays with the clinic: what is
-- kept is the public key (the NATS user's identity), who issued it and
-- who revoked it. A key is issued once: revoking it is final.
CREATE TABLE clinic_nats_credentials (
    id          uuid PRIMARY KEY,
    clinic_id   text NOT NULL REFERENCES clinics (id),
    public_key  text NOT NULL CHECK (public_key ~ '^U[A-Z2-7]{55}$'),
    issued_at   timestamptz NOT NULL,
    issued_by   text NOT NULL,
    revoked_at  timestamptz,
    revoked_by  text,
    CONSTRAINT clinic_nats_credentials_key UNIQUE (public_key),
    CHECK ((revoked_at IS NULL) = (revoked_by IS NULL))
);

CREATE INDEX clinic_nats_credentials_clinic ON clinic_nats_credentials (clinic_id, issued_at);
