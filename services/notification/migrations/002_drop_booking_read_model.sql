-- Every booking event carries the whole booking, and notification acts on
-- the event in hand (the balance email follows ready_for_administration),
-- so it no longer keeps its own copy of patients' bookings.
DROP TABLE IF EXISTS bookings;
