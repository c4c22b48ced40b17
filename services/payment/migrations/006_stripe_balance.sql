-- Stripe's balance transactions, imported from its API for reconciliation:
-- every movement of money on the account, once each (the primary key), as
-- Stripe reports it.
CREATE TABLE stripe_balance_transactions (
    id                 text PRIMARY KEY,
    type               text NOT NULL,
    reporting_category text NOT NULL,
    source             text NOT NULL DEFAULT '',
    amount             bigint NOT NULL,
    fee                bigint NOT NULL,
    net                bigint NOT NULL,
    currency           text NOT NULL,
    created            timestamptz NOT NULL,
    imported_at        timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX stripe_balance_transactions_created ON stripe_balance_transactions (created);
CREATE INDEX stripe_balance_transactions_source ON stripe_balance_transactions (source);

-- Where the import stands: the newest balance transaction imported.
CREATE TABLE stripe_import_state (
    what         text PRIMARY KEY,
    last_created timestamptz NOT NULL
);
