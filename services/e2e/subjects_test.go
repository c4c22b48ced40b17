package e2e

import (
	"context"
	"slices"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/saisei-health/platform/pkg/bus"
	"github.com/saisei-health/platform/pkg/subject"
)

// assertSubjectsAgree reads the running platform's JetStream: every durable
// consumer a service registered filters on subjects some producer builds
// (subject.Produced), and every event the journey published is on such a
// subject. A consumer waiting on a subject nobody publishes would wait
// forever without an error; this is where it shows.
func (p *platform) assertSubjectsAgree(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	produced := subject.Produced()
	overlapsProduced := func(s string) bool {
		return slices.ContainsFunc(produced, func(p string) bool { return subject.Overlaps(s, p) })
	}
	consumers := 0
	for _, stream := range []string{bus.StreamCatalog, bus.StreamQuoting, bus.StreamBooking, bus.StreamPayment, bus.StreamClinic} {
		st, err := p.js.Stream(ctx, stream)
		if err != nil {
			t.Fatal(err)
		}
		lister := st.ListConsumers(ctx)
		for info := range lister.Info() {
			filters := info.Config.FilterSubjects
			if info.Config.FilterSubject != "" {
				filters = append(filters, info.Config.FilterSubject)
			}
			for _, f := range filters {
				consumers++
				if !overlapsProduced(f) {
					t.Errorf("consumer %s on %s filters on %s, which no producer builds", info.Name, stream, f)
				}
			}
		}
		if err := lister.Err(); err != nil {
			t.Fatal(err)
		}
		// Every message in the stream is on a subject of the map.
		info, err := st.Info(ctx, jetstream.WithSubjectFilter(">"))
		if err != nil {
			t.Fatal(err)
		}
		for s := range info.State.Subjects {
			if !overlapsProduced(s) {
				t.Errorf("%s holds an event on %s, which is not in the subject map", stream, s)
			}
		}
	}
	if consumers < 6 {
		t.Fatalf("only %d consumer filters found", consumers)
	}
}
