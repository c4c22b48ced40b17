-- Every email has an HTML part beside its text, rendered from the same
-- words and sent as multipart/alternative.
ALTER TABLE emails ADD COLUMN html text NOT NULL DEFAULT '';
