package subject_test

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/saisei-health/platform/pkg/bus"
	"github.com/saisei-health/platform/pkg/subject"
)

func TestSubjectsAreBuiltTheSameWayForProducersAndConsumers(t *testing.T) {
	for got, want := range map[string]string{
		subject.Booking("ginza", subject.Confirmed):                         "booking.v1.ginza.confirmed",
		subject.Booking(subject.Any, subject.CellsReady):                    "booking.v1.*.cells_ready",
		subject.Payment("ginza", subject.Balance, subject.Succeeded):        "payment.v1.ginza.balance.succeeded",
		subject.Quote("ginza", subject.QuoteAccepted):                       "quoting.v1.ginza.quote.accepted",
		subject.Treatment("t1"):                                             "catalog.v1.treatments.t1",
		subject.Plan("PB3240117"):                                           "catalog.v1.plans.PB3240117",
		subject.ClinicNotice("ginza", subject.NoticeReadyForAdministration): "clinic.v1.ginza.booking.ready_for_administration",
		subject.Clinic("ginza"):                                             "clinic.v1.ginza.>",
	} {
		if got != want {
			t.Errorf("built %q, want %q", got, want)
		}
	}
}

func TestOverlapsFollowsNATSWildcards(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want bool
	}{
		{"booking.v1.*.cells_ready", "booking.v1.ginza.cells_ready", true},
		{"booking.v1.*.cells_ready", "booking.v1.*.qc_failed", false},
		{"booking.v1.>", "booking.v1.*.created", true},
		{"booking.v1.>", "booking.v1", false},
		{"catalog.v1.treatments.>", "catalog.v1.treatments.*", true},
		{"catalog.v1.treatments.>", "catalog.v1.plans.*", false},
		{"clinic.v1.a.>", "clinic.v1.b.booking.confirmed", false},
		{"payment.v1.*.balance.succeeded", "payment.v1.*.balance", false},
	} {
		if got := subject.Overlaps(c.a, c.b); got != c.want || subject.Overlaps(c.b, c.a) != c.want {
			t.Errorf("Overlaps(%q, %q) = %v, want %v (both ways)", c.a, c.b, got, c.want)
		}
	}
}

// Every subject a producer builds lands in exactly one stream: an event on
// a subject no stream holds would be lost (JetStream answers "no
// responders" and the outbox retries it forever).
func TestEveryProducedSubjectIsInExactlyOneStream(t *testing.T) {
	for _, s := range subject.Produced() {
		var in []string
		for _, st := range bus.Streams(1) {
			for _, filter := range st.Subjects {
				if subject.Overlaps(filter, s) {
					in = append(in, st.Name)
				}
			}
		}
		if len(in) != 1 {
			t.Errorf("%s is in streams %v, want exactly one", s, in)
		}
	}
}

// Producers and consumers build subjects here and nowhere else: a subject
// spelled out by hand elsewhere is one this package's tests cannot see.
func TestNoSubjectIsSpelledOutElsewhere(t *testing.T) {
	literal := regexp.MustCompile(`"(catalog|quoting|booking|payment|clinic)\.v1\.`)
	var offenders []string
	for _, root := range []string{"../../pkg", "../../services"} {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && d.Name() == "events" || d.IsDir() && d.Name() == "subject" {
				return filepath.SkipDir // generated code; this package
			}
			if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			src, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			if loc := literal.FindIndex(src); loc != nil {
				offenders = append(offenders, fmt.Sprintf("%s: %s", path, src[loc[0]:loc[1]+12]))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(offenders) > 0 {
		t.Fatalf("subjects spelled out by hand (use package subject):\n%s", strings.Join(offenders, "\n"))
	}
}
