-- A booking's culture attempt: 2 after the patient chose a free re-culture.
ALTER TABLE bookings ADD COLUMN culture_attempt integer NOT NULL DEFAULT 1 CHECK (culture_attempt BETWEEN 1 AND 2);
