// Command deadletters shows and replays the messages consumers gave up on.
//
//	deadletters [-nats URL] list
//	deadletters [-nats URL] replay SEQ   # publish it again, then remove it
//	deadletters [-nats URL] discard SEQ  # remove it without replaying
//
// Replaying is safe: every consumer that already handled the event skips it
// through its inbox; only the one that failed acts on it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/saisei-health/platform/pkg/bus"
)

func main() {
	natsURL := flag.String("nats", envOr("NATS_URL", "nats://127.0.0.1:4222"), "NATS server URL")
	creds := flag.String("creds", envOr("NATS_CREDS", ".data/nats-auth/operator.creds"), "NATS credentials file (make run writes the operator's)")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: deadletters [-nats URL] [-creds FILE] list | replay SEQ | discard SEQ")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var opts []nats.Option
	if _, err := os.Stat(*creds); err == nil {
		opts = append(opts, nats.UserCredentials(*creds))
	}
	nc, js, err := bus.Connect(*natsURL, "deadletters", opts...)
	if err != nil {
		fail(err)
	}
	defer nc.Close()

	switch flag.Arg(0) {
	case "list":
		dls, err := bus.DeadLetters(ctx, js)
		if err != nil {
			fail(err)
		}
		w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "SEQ\tWHEN\tREASON\tCONSUMER\tSUBJECT\tEVENT\tDELIVERIES\tDETAIL")
		for _, d := range dls {
			fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", d.Seq, d.At.Format(time.RFC3339), d.Reason, d.Consumer,
				d.Subject, d.EventID, d.Deliveries, d.Detail)
		}
		_ = w.Flush()
	case "replay", "discard":
		seq, err := strconv.ParseUint(flag.Arg(1), 10, 64)
		if err != nil {
			fail(fmt.Errorf("%s needs the SEQ shown by list", flag.Arg(0)))
		}
		if flag.Arg(0) == "discard" {
			err = bus.Discard(ctx, js, seq)
		} else {
			err = replay(ctx, seq, js)
		}
		if err != nil {
			fail(err)
		}
		fmt.Println(flag.Arg(0), "done:", seq)
	default:
		flag.Usage()
		os.Exit(2)
	}
}

func replay(ctx context.Context, seq uint64, js jetstream.JetStream) error {
	dls, err := bus.DeadLetters(ctx, js)
	if err != nil {
		return err
	}
	for _, d := range dls {
		if d.Seq == seq {
			return bus.Replay(ctx, js, d)
		}
	}
	return fmt.Errorf("no dead letter %d", seq)
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "deadletters:", err)
	os.Exit(1)
}
