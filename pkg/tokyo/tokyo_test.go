package tokyo

import (
	"testing"
	"time"
)

func TestDateIsTheJapaneseCalendarDay(t *testing.T) {
	// 2026-11-25 16:30 UTC is already 2026-11-26 01:30 in Tokyo.
	got := Date(time.Date(2026, 11, 25, 16, 30, 0, 0, time.UTC))
	if want := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Fatalf("Date = %v, want %v", got, want)
	}
	end := EndOfDay(time.Date(2026, 12, 9, 0, 0, 0, 0, time.UTC))
	if want := time.Date(2026, 12, 9, 14, 59, 59, 0, time.UTC); !end.Equal(want) {
		t.Fatalf("EndOfDay = %v, want %v", end, want)
	}
}
