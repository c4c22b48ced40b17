-- The Stripe charge that took a succeeded payment's money.
ALTER TABLE payments ADD COLUMN charge_id text NOT NULL DEFAULT '';

-- The double-entry ledger. Every movement of money is one transaction
-- whose entries sum to zero in each currency; the database refuses any
-- other (a constraint trigger checked at commit), refuses to change or
-- delete what was written, and holds at most one transaction per source —
-- the Stripe object that moved the money — so a redelivered or replayed
-- event cannot post twice.
CREATE TABLE ledger_transactions (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source      text NOT NULL CHECK (source <> '' AND length(source) <= 255),
    kind        text NOT NULL CHECK (kind IN ('charge', 'refund', 'fee', 'dispute', 'dispute_reversal',
                    'dispute_fee', 'payout', 'settlement')),
    booking_id  uuid,
    clinic_id   text NOT NULL DEFAULT '',
    occurred_at timestamptz NOT NULL,
    posted_at   timestamptz NOT NULL DEFAULT now(),
    description text NOT NULL DEFAULT '',
    CONSTRAINT ledger_transactions_source UNIQUE (source)
);

CREATE TABLE ledger_entries (
    transaction_id bigint NOT NULL REFERENCES ledger_transactions (id),
    line           smallint NOT NULL CHECK (line BETWEEN 1 AND 16),
    -- booking:<id>:deposit_received, clinic:<id>:owed, stripe:balance, …
    account        text NOT NULL CHECK (account ~ '^[a-z_]+(:[A-Za-z0-9_-]{1,64}){0,3}$'),
    -- Minor units: positive debits, negative credits.
    amount         bigint NOT NULL CHECK (amount <> 0),
    currency       text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    PRIMARY KEY (transaction_id, line)
);

CREATE INDEX ledger_entries_account ON ledger_entries (account, transaction_id);
CREATE INDEX ledger_transactions_booking ON ledger_transactions (booking_id) WHERE booking_id IS NOT NULL;
CREATE INDEX ledger_transactions_occurred ON ledger_transactions (occurred_at, id);

-- Balanced: checked when the writing transaction commits, once every entry
-- is in, for each transaction it touched.
-- The functions keep the schema they were created in: the checks hold
-- whoever writes, whatever their search_path.
CREATE FUNCTION ledger_check_transaction(tx bigint) RETURNS void LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    off record;
BEGIN
    IF (SELECT count(*) FROM ledger_entries WHERE transaction_id = tx) < 2 THEN
        RAISE EXCEPTION 'ledger transaction % has fewer than two entries', tx USING ERRCODE = 'check_violation';
    END IF;
    SELECT currency, sum(amount) AS total INTO off FROM ledger_entries WHERE transaction_id = tx
        GROUP BY currency HAVING sum(amount) <> 0 LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'ledger transaction % does not balance: % %', tx, off.total, off.currency
            USING ERRCODE = 'check_violation';
    END IF;
END $$;

CREATE FUNCTION ledger_entry_balanced() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    PERFORM ledger_check_transaction(NEW.transaction_id);
    RETURN NULL;
END $$;

CREATE FUNCTION ledger_transaction_balanced() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    PERFORM ledger_check_transaction(NEW.id);
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER ledger_entries_balanced AFTER INSERT ON ledger_entries
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_entry_balanced();
CREATE CONSTRAINT TRIGGER ledger_transactions_have_entries AFTER INSERT ON ledger_transactions
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_transaction_balanced();

-- Immutable: a mistake is corrected by a new transaction, never by editing.
CREATE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    RAISE EXCEPTION 'the ledger is append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TRIGGER ledger_transactions_immutable BEFORE UPDATE OR DELETE ON ledger_transactions
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER ledger_entries_immutable BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER ledger_transactions_no_truncate BEFORE TRUNCATE ON ledger_transactions
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER ledger_entries_no_truncate BEFORE TRUNCATE ON ledger_entries
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();
