-- A quote belongs to the patient who asked for it: the token's subject.
-- Only that patient, and the quote's clinic, may read it; quotes issued
-- before identity have no owner and are visible to their clinic only.
ALTER TABLE quotes ADD COLUMN patient_subject text NOT NULL DEFAULT '';
