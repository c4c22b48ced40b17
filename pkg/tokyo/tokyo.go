// Package tokyo is the clinics' clock. Storage is UTC; dates that belong to
// a clinic (a plan's validity, a quote's last valid day, an appointment) are
// Japanese calendar dates.
package tokyo

import (
	"time"
	_ "time/tzdata" // the zone must resolve in minimal containers too
)

// Location is Asia/Tokyo.
var Location = mustLoad()

func mustLoad() *time.Location {
	loc, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		panic(err)
	}
	return loc
}

// Date is the Japanese calendar date of t, as midnight UTC of that date: the
// form in which Postgres `date` values arrive, so the two compare directly.
func Date(t time.Time) time.Time {
	y, m, d := t.In(Location).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// EndOfDay is the last instant of date (a Japanese calendar date) in UTC.
func EndOfDay(date time.Time) time.Time {
	y, m, d := date.Date()
	return time.Date(y, m, d, 23, 59, 59, 0, Location).UTC()
}
