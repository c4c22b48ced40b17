-- Events a consumer has applied. The row is written in the same transaction
-- as the consumer's effects, so a redelivered event finds it and is skipped.
CREATE TABLE inbox (
    consumer     text NOT NULL,
    event_id     text NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
