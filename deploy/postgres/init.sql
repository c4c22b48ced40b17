-- Saisei: one database, one schema and one login role per service.
--
-- Each role owns its schema and nothing else, and its search_path is that
-- schema, exactly as pkg/pgdb.Provision does for `make run` and the tests.
-- The services create their own tables at start (embedded migrations).
--
-- Run it as a superuser, connected to the platform's database:
--   * docker-compose.yml mounts it into /docker-entrypoint-initdb.d/, so the
--     postgres image runs it once, on first initialisation, inside the
--     database named by POSTGRES_DB (saisei);
--   * for an external server: createdb saisei, then
--       psql -v ON_ERROR_STOP=1 -d saisei -f deploy/postgres/init.sql
--
-- It is safe to run again: existing roles get their password reset (as
-- Provision does), existing schemas are left as they are.
--
-- LOCAL-ONLY PASSWORDS: the '<service>-dev' passwords below are for Docker
-- Compose and local runs. Anywhere else, change them (ALTER ROLE ... PASSWORD)
-- and put the real ones only in each service's DATABASE_URL secret.

\set ON_ERROR_STOP on

DO $$
DECLARE
    svc text;
BEGIN
    FOREACH svc IN ARRAY ARRAY['catalog', 'quoting', 'booking', 'payment', 'notification'] LOOP
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = svc) THEN
            EXECUTE format('ALTER ROLE %I LOGIN PASSWORD %L', svc, svc || '-dev');
        ELSE
            EXECUTE format('CREATE ROLE %I LOGIN PASSWORD %L', svc, svc || '-dev');
        END IF;
        EXECUTE format('CREATE SCHEMA IF NOT EXISTS %I AUTHORIZATION %I', svc, svc);
        EXECUTE format('ALTER ROLE %I SET search_path = %I', svc, svc);
    END LOOP;
END
$$;

-- Nobody but the owner (the superuser) may use or create in public; the
-- services never look there.
REVOKE ALL ON SCHEMA public FROM PUBLIC;
