package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/saisei-health/platform/pkg/subject"
)

// Stream names.
const (
	StreamCatalog    = "CATALOG"
	StreamQuoting    = "QUOTING"
	StreamBooking    = "BOOKING"
	StreamPayment    = "PAYMENT"
	StreamClinic     = "CLINIC"
	StreamDeadLetter = "DEADLETTER"
)

// Subjects of the dead-letter stream: the advisories JetStream publishes when
// a message exhausts MaxDeliver or a handler terminates it.
const (
	advisoryMaxDeliveries = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.>"
	advisoryTerminated    = "$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.>"
)

// Streams is the platform's whole stream topology, in one place: one stream
// per subject tree of package subject.
func Streams(replicas int) []jetstream.StreamConfig {
	if replicas < 1 {
		replicas = 1
	}
	const keep = 90 * 24 * time.Hour
	domain := func(name, subject, desc string) jetstream.StreamConfig {
		return jetstream.StreamConfig{
			Name:        name,
			Description: desc,
			Subjects:    []string{subject},
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    replicas,
			MaxAge:      keep,
			Duplicates:  time.Hour,
			Discard:     jetstream.DiscardOld,
		}
	}
	catalog := domain(StreamCatalog, subject.CatalogTree, "catalog changes; last state per subject")
	// Every catalog subject carries a full snapshot, so only the latest per
	// subject matters: the stream is a compacted changelog a read model can
	// be rebuilt from.
	catalog.MaxMsgsPerSubject = 1
	return []jetstream.StreamConfig{
		catalog,
		domain(StreamQuoting, subject.QuotingTree, "quotes issued and accepted"),
		domain(StreamBooking, subject.BookingTree, "booking lifecycle"),
		domain(StreamPayment, subject.PaymentTree, "deposits and balances"),
		domain(StreamClinic, subject.ClinicTree, "notices to clinics, one subject tree per clinic"),
		{
			Name:        StreamDeadLetter,
			Description: "advisories of messages that exhausted their deliveries or were terminated",
			Subjects:    []string{advisoryMaxDeliveries, advisoryTerminated},
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    replicas,
			MaxAge:      keep,
		},
	}
}

// EnsureStreams creates or updates every stream. Each service calls it at
// start, so start-up order does not matter.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, replicas int) error {
	for _, cfg := range Streams(replicas) {
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("bus: stream %s: %w", cfg.Name, err)
		}
	}
	return nil
}

// RetireConsumer deletes a durable consumer that a service no longer runs,
// so it does not linger on the server counting a backlog nobody reads. A
// consumer that is already gone is fine: every replica calls this at start.
func RetireConsumer(ctx context.Context, js jetstream.JetStream, stream, durable string) error {
	err := js.DeleteConsumer(ctx, stream, durable)
	if err == nil || errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil
	}
	return fmt.Errorf("bus: retire consumer %s on %s: %w", durable, stream, err)
}
