-- A row that can never be published (larger than the server accepts,
-- rejected by the stream) is parked with its reason instead of blocking
-- every row after it; operators see it and decide (docs/operations.md).
ALTER TABLE outbox ADD COLUMN parked_at timestamptz;
ALTER TABLE outbox ADD COLUMN park_reason text NOT NULL DEFAULT '';

DROP INDEX outbox_unpublished;
CREATE INDEX outbox_unpublished ON outbox (seq) WHERE published_at IS NULL AND parked_at IS NULL;
