package devtest

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/saisei-health/platform/pkg/bus"
	"github.com/saisei-health/platform/pkg/pgdb"
)

// Eventually polls cond every 10 ms until it holds, and fails the test after
// 15 s. Tests wait on a state, never on a sleep.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Publish puts e on its subject exactly as a service's outbox relay would
// (the event id as Nats-Msg-Id; id, type and occurrence headers), for a
// service under test to consume. It returns the message's stream sequence.
func Publish(t testing.TB, js jetstream.JetStream, e bus.Event, occurredAt time.Time) uint64 {
	t.Helper()
	return publish(t, js, e, occurredAt, e.ID)
}

// Redeliver puts the same event on the stream again under another
// Nats-Msg-Id, so JetStream stores it twice and its consumers really receive
// it twice, as after a relay that republished beyond the deduplication
// window. Only the consumer's inbox can then keep the effect single.
func Redeliver(t testing.TB, js jetstream.JetStream, e bus.Event, occurredAt time.Time) uint64 {
	t.Helper()
	return publish(t, js, e, occurredAt, e.ID+":redelivered:"+time.Now().Format(time.RFC3339Nano))
}

func publish(t testing.TB, js jetstream.JetStream, e bus.Event, occurredAt time.Time, msgID string) uint64 {
	t.Helper()
	data, err := proto.Marshal(e.Message)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	env := bus.Envelope{ID: e.ID, Subject: e.Subject, Type: bus.TypeName(e.Message), Data: data, OccurredAt: occurredAt}
	ack, err := js.PublishMsg(ctx, bus.NewMsg(ctx, env), jetstream.WithMsgID(msgID))
	if err != nil {
		t.Fatalf("devtest: publish %s on %s: %v", e.ID, e.Subject, err)
	}
	if ack.Duplicate {
		t.Fatalf("devtest: %s on %s was dropped as a duplicate of Nats-Msg-Id %s", e.ID, e.Subject, msgID)
	}
	return ack.Sequence
}

// OutboxDrained waits until the service owning schema has published every
// event it committed, so what a test then reads from the streams is all
// there will be.
func OutboxDrained(t testing.TB, db pgdb.Querier, schema string) {
	t.Helper()
	if !pgdb.ValidIdentifier(schema) {
		t.Fatalf("devtest: %q is not a schema name", schema)
	}
	Eventually(t, schema+"'s outbox to drain", func() bool {
		var n int
		err := db.QueryRow(context.Background(), `SELECT count(*) FROM `+schema+`.outbox WHERE published_at IS NULL AND parked_at IS NULL`).Scan(&n)
		return err == nil && n == 0
	})
}
