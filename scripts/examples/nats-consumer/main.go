// Command nats-consumer is the smallest clinic system that reads its
// booking notices from NATS: with the clinic's own credentials it opens
// (or creates) its durable consumer on the CLINIC stream, so after being
// offline it catches up on everything it missed, in order, then follows
// new notices. Under `make run`:
//
//	GOWORK=off go run . -clinic tokyo-ginza-namiki-clinic -creds ../../../.data/clinics/tokyo-ginza-namiki-clinic.creds
//
// Notices are protobuf (saisei.notification.v1.ClinicBookingNotice, see
// docs/events.md); this example prints their headers and subject and
// leaves decoding to the clinic's generated code. Each notice's
// Saisei-Event-Id is the webhook-id the HTTPS path uses: deduplicate on it.
package main

import (
	"context"
	"flag"
	"log"
	"os"
	"os/signal"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func main() {
	url := flag.String("nats", "nats://127.0.0.1:4222", "NATS server")
	clinic := flag.String("clinic", "", "your clinic id")
	creds := flag.String("creds", "", "your clinic's .creds file")
	flag.Parse()
	if *clinic == "" || *creds == "" {
		log.Fatal("give -clinic and -creds")
	}
	// The clinic's user may only receive on its own inbox prefix.
	nc, err := nats.Connect(*url, nats.UserCredentials(*creds), nats.CustomInboxPrefix("_INBOX_"+*clinic),
		nats.Name("clinic "+*clinic),
		// The server answers what the credentials may not do with a
		// permissions violation: show it rather than wait in silence.
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { log.Printf("nats: %v", err) }))
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	// The durable's name and filter are fixed by the clinic's permissions:
	// clinic-<id>, clinic.v1.<id>.>.
	cons, err := js.CreateOrUpdateConsumer(ctx, "CLINIC", jetstream.ConsumerConfig{
		Durable: "clinic-" + *clinic, FilterSubject: "clinic.v1." + *clinic + ".>", AckPolicy: jetstream.AckExplicitPolicy,
	})
	if err != nil {
		log.Fatalf("open the clinic's consumer: %v", err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		log.Printf("%s %s (%s)", m.Headers().Get("Saisei-Event-Id"), m.Subject(), m.Headers().Get("Saisei-Event-Type"))
		// Process, record the event id, then acknowledge: an unacknowledged
		// notice is delivered again.
		if err := m.Ack(); err != nil {
			log.Printf("ack: %v", err)
		}
	})
	if err != nil {
		log.Fatal(err)
	}
	defer cc.Stop()
	log.Printf("following clinic.v1.%s.> as clinic-%s", *clinic, *clinic)
	<-ctx.Done()
}
