package natsauth_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/saisei-health/platform/pkg/bus"
	"github.com/saisei-health/platform/pkg/natsauth"
)

// startServer runs a real nats-server with JetStream that trusts only t,
// keeping account JWTs in jwtDir.
func startServer(t *testing.T, trust *natsauth.Trust, jwtDir string) *server.Server {
	t.Helper()
	opts := &server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true}
	if err := trust.Configure(opts, jwtDir); err != nil {
		t.Fatal(err)
	}
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

// party is one connection with its credentials, recording the permission
// errors the server sends it.
type party struct {
	nc *nats.Conn
	js jetstream.JetStream

	mu         sync.Mutex
	violations []string
	closed     chan struct{}
}

func connect(t *testing.T, s *server.Server, creds []byte, opts ...nats.Option) (*party, error) {
	t.Helper()
	p := &party{closed: make(chan struct{})}
	file := t.TempDir() + "/user.creds"
	if err := writeFile(file, creds); err != nil {
		t.Fatal(err)
	}
	opts = append(opts, nats.UserCredentials(file), nats.NoReconnect(),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			p.mu.Lock()
			defer p.mu.Unlock()
			p.violations = append(p.violations, err.Error())
		}),
		nats.ClosedHandler(func(*nats.Conn) { close(p.closed) }))
	nc, err := nats.Connect(s.ClientURL(), opts...)
	if err != nil {
		return nil, err
	}
	t.Cleanup(nc.Close)
	p.nc = nc
	p.js, err = jetstream.New(nc)
	return p, err
}

// refused reports whether the server answered a permission violation
// naming what.
func (p *party) refused(t *testing.T, what string) bool {
	t.Helper()
	_ = p.nc.Flush()
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		p.mu.Lock()
		for _, v := range p.violations {
			if strings.Contains(strings.ToLower(v), "permissions violation") && strings.Contains(v, what) {
				p.mu.Unlock()
				return true
			}
		}
		p.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

func mustUser(t *testing.T, trust *natsauth.Trust, name string, p natsauth.Permissions) ([]byte, string) {
	t.Helper()
	creds, pub, err := trust.User(name, p)
	if err != nil {
		t.Fatal(err)
	}
	return creds, pub
}

// issuer is the chain's ClinicIssuer, as the catalog holds it, with its
// system-account connection to s.
func issuer(t *testing.T, trust *natsauth.Trust, s *server.Server) (*natsauth.ClinicIssuer, *nats.Conn) {
	t.Helper()
	ci, err := trust.ClinicIssuer()
	if err != nil {
		t.Fatal(err)
	}
	path := t.TempDir() + "/issuer.json"
	if err := ci.Save(path); err != nil {
		t.Fatal(err)
	}
	if ci, err = natsauth.LoadClinicIssuer(path); err != nil {
		t.Fatal(err)
	}
	sys, err := ci.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sys.Close)
	return ci, sys
}

func clinicUser(t *testing.T, ci *natsauth.ClinicIssuer, clinicID string) ([]byte, string) {
	t.Helper()
	creds, pub, err := ci.NewClinicUser(clinicID)
	if err != nil {
		t.Fatal(err)
	}
	return creds, pub
}

func revoke(t *testing.T, ci *natsauth.ClinicIssuer, sys *nats.Conn, pub string) {
	t.Helper()
	changed, err := ci.Revoke(context.Background(), sys, map[string]time.Time{pub: time.Now()})
	if err != nil || !changed {
		t.Fatalf("revoke %s: changed %v, %v", pub, changed, err)
	}
}

func TestEachPartyHasItsOwnCredentialsAndTheServerEnforcesThem(t *testing.T) {
	ctx := context.Background()
	trust, err := natsauth.New()
	if err != nil {
		t.Fatal(err)
	}
	s := startServer(t, trust, t.TempDir())
	ci, sys := issuer(t, trust, s)

	// No credentials, no connection.
	if nc, err := nats.Connect(s.ClientURL(), nats.NoReconnect()); err == nil {
		nc.Close()
		t.Fatal("an anonymous connection was accepted")
	}

	// The services: booking publishes only booking.v1.>, notification only clinic.v1.>.
	bookingCreds, _ := mustUser(t, trust, "booking", natsauth.ServiceUser("booking"))
	booking, err := connect(t, s, bookingCreds)
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.EnsureStreams(ctx, booking.js, 1); err != nil {
		t.Fatalf("a service sets up the streams: %v", err)
	}
	if _, err := booking.js.Publish(ctx, "booking.v1.ginza.created", []byte("{}")); err != nil {
		t.Fatalf("booking publishes its own event: %v", err)
	}
	if err := booking.nc.Publish("payment.v1.ginza.deposit.succeeded", []byte("forged")); err != nil {
		t.Fatal(err)
	}
	if !booking.refused(t, "payment.v1.ginza.deposit.succeeded") {
		t.Fatal("booking published payment.v1.ginza.deposit.succeeded unchallenged")
	}
	if n := streamCount(t, booking.js, bus.StreamPayment); n != 0 {
		t.Fatalf("the PAYMENT stream holds %d forged events", n)
	}
	// Booking reads the payment stream it consumes, and no other: not the
	// clinics' notices.
	short, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	check, err := booking.js.CreateOrUpdateConsumer(short, bus.StreamPayment, jetstream.ConsumerConfig{
		Durable: "booking-check", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatalf("booking consumes PAYMENT: %v", err)
	}
	if _, err := check.Fetch(1, jetstream.FetchMaxWait(100*time.Millisecond)); err != nil || booking.refused(t, "MSG.NEXT") {
		t.Fatalf("booking pulls from PAYMENT: %v", err)
	}
	if _, err := booking.js.CreateOrUpdateConsumer(short, natsauth.ClinicStream, jetstream.ConsumerConfig{
		Durable: "booking-snoop", AckPolicy: jetstream.AckExplicitPolicy}); err == nil {
		t.Fatal("booking created a consumer on the clinics' notices")
	}

	notifCreds, _ := mustUser(t, trust, "notification", natsauth.ServiceUser("notification"))
	notification, err := connect(t, s, notifCreds)
	if err != nil {
		t.Fatal(err)
	}
	// While clinic A's system is offline, three notices for A, one for B.
	for _, subj := range []string{"clinic.v1.ginza.booking.confirmed", "clinic.v1.osaka.booking.confirmed",
		"clinic.v1.ginza.booking.ready_for_administration", "clinic.v1.ginza.booking.administered"} {
		if _, err := notification.js.Publish(ctx, subj, []byte(subj)); err != nil {
			t.Fatalf("notification publishes %s: %v", subj, err)
		}
	}

	// Clinics' users come from the issuer's scoped key: their permissions
	// are the scope's template, for the clinic in their tag.
	ginzaCreds, ginzaPub := clinicUser(t, ci, "ginza")
	ginza, err := connect(t, s, ginzaCreds, nats.CustomInboxPrefix(natsauth.ClinicInbox("ginza")))
	if err != nil {
		t.Fatal(err)
	}

	t.Run("a clinic back online catches up on everything it missed, in order, and nothing else", func(t *testing.T) {
		cons, err := ginza.js.CreateOrUpdateConsumer(ctx, natsauth.ClinicStream, jetstream.ConsumerConfig{
			Durable: natsauth.ClinicDurable("ginza"), FilterSubject: "clinic.v1.ginza.>", AckPolicy: jetstream.AckExplicitPolicy})
		if err != nil {
			t.Fatalf("the clinic creates its durable consumer: %v", err)
		}
		batch, err := cons.Fetch(10, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for m := range batch.Messages() {
			got = append(got, m.Subject())
			if err := m.Ack(); err != nil {
				t.Fatalf("ack: %v", err)
			}
		}
		want := []string{"clinic.v1.ginza.booking.confirmed", "clinic.v1.ginza.booking.ready_for_administration", "clinic.v1.ginza.booking.administered"}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Fatalf("caught up on %v, want %v", got, want)
		}
	})

	t.Run("clinic A cannot read clinic B's subjects, by subscription or consumer, nor publish anything", func(t *testing.T) {
		if _, err := ginza.nc.SubscribeSync("clinic.v1.osaka.>"); err != nil {
			t.Fatal(err)
		}
		if !ginza.refused(t, `clinic.v1.osaka.>`) {
			t.Error("ginza subscribed to osaka's subjects")
		}
		// Replies to other parties travel on the shared inbox prefix.
		if _, err := ginza.nc.SubscribeSync("_INBOX.>"); err != nil {
			t.Fatal(err)
		}
		if !ginza.refused(t, `_INBOX.>`) {
			t.Error("ginza subscribed to the shared inbox")
		}
		short, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		for _, c := range []jetstream.ConsumerConfig{
			{Durable: natsauth.ClinicDurable("ginza"), FilterSubject: "clinic.v1.osaka.>"}, // its own name, another's filter
			{Durable: natsauth.ClinicDurable("osaka"), FilterSubject: "clinic.v1.osaka.>"}, // another's name
			{Durable: natsauth.ClinicDurable("ginza")},                                     // no filter: everything
		} {
			c.AckPolicy = jetstream.AckExplicitPolicy
			if _, err := ginza.js.CreateOrUpdateConsumer(short, natsauth.ClinicStream, c); err == nil {
				t.Errorf("ginza created consumer %s on %q", c.Durable, c.FilterSubject)
			}
		}
		if err := ginza.nc.Publish("clinic.v1.ginza.booking.confirmed", []byte("forged")); err != nil {
			t.Fatal(err)
		}
		if !ginza.refused(t, "clinic.v1.ginza.booking.confirmed") {
			t.Error("a clinic published a notice")
		}
		if err := ginza.nc.Publish("booking.v1.ginza.created", []byte("forged")); err != nil {
			t.Fatal(err)
		}
		if !ginza.refused(t, "booking.v1.ginza.created") {
			t.Error("a clinic published a booking event")
		}
	})

	t.Run("clinic B reads only its own, and a revoked clinic is cut off at once", func(t *testing.T) {
		osakaCreds, _ := clinicUser(t, ci, "osaka")
		osaka, err := connect(t, s, osakaCreds, nats.CustomInboxPrefix(natsauth.ClinicInbox("osaka")))
		if err != nil {
			t.Fatal(err)
		}
		cons, err := osaka.js.CreateOrUpdateConsumer(ctx, natsauth.ClinicStream, jetstream.ConsumerConfig{
			Durable: natsauth.ClinicDurable("osaka"), FilterSubject: "clinic.v1.osaka.>", AckPolicy: jetstream.AckExplicitPolicy})
		if err != nil {
			t.Fatal(err)
		}
		batch, err := cons.Fetch(10, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			if m.Subject() != "clinic.v1.osaka.booking.confirmed" {
				t.Errorf("osaka read %s", m.Subject())
			}
		}
		if n != 1 {
			t.Errorf("osaka read %d notices, want 1", n)
		}
		// Ginza cannot pull from osaka's consumer.
		short, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if c, err := ginza.js.Consumer(short, natsauth.ClinicStream, natsauth.ClinicDurable("osaka")); err == nil {
			if b, err := c.Fetch(1, jetstream.FetchMaxWait(time.Second)); err == nil {
				for m := range b.Messages() {
					t.Errorf("ginza pulled %s from osaka's consumer", m.Subject())
				}
			}
		}

		revoke(t, ci, sys, ginzaPub)
		select {
		case <-ginza.closed:
		case <-time.After(5 * time.Second):
			t.Fatal("the revoked clinic is still connected")
		}
		if _, err := connect(t, s, ginzaCreds, nats.CustomInboxPrefix(natsauth.ClinicInbox("ginza"))); err == nil {
			t.Fatal("revoked credentials connected again")
		} else if !errors.Is(err, nats.ErrAuthorization) && !strings.Contains(strings.ToLower(err.Error()), "authoriz") {
			t.Logf("reconnect refused: %v", err)
		}
		// Others are untouched.
		if !osaka.nc.IsConnected() || !booking.nc.IsConnected() {
			t.Fatal("revoking one clinic cut off others")
		}
		// Revoking again changes nothing.
		if changed, err := ci.Revoke(ctx, sys, map[string]time.Time{ginzaPub: time.Now().Add(-time.Hour)}); err != nil || changed {
			t.Fatalf("a second revocation: changed %v, %v", changed, err)
		}
	})
}

func streamCount(t *testing.T, js jetstream.JetStream, stream string) uint64 {
	t.Helper()
	s, err := js.Stream(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// make run keeps the chain in .data: credentials issued before a restart
// still connect after it, and a revocation outlives the restart too.
func TestTheTrustChainSurvivesARestart(t *testing.T) {
	path := t.TempDir() + "/nats/trust.json"
	first, err := natsauth.LoadOrCreate(path)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := os.Stat(path); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("trust file: %v %v", info, err)
	}
	jwtDir := t.TempDir()
	s := startServer(t, first, jwtDir)
	ci, sys := issuer(t, first, s)
	keptCreds, _ := clinicUser(t, ci, "ginza")
	revokedCreds, revokedPub := clinicUser(t, ci, "osaka")
	revoke(t, ci, sys, revokedPub)
	sys.Close()
	s.Shutdown()
	s.WaitForShutdown()

	again, err := natsauth.LoadOrCreate(path)
	if err != nil {
		t.Fatal(err)
	}
	restarted := startServer(t, again, jwtDir)
	if _, err := connect(t, restarted, keptCreds, nats.CustomInboxPrefix(natsauth.ClinicInbox("ginza"))); err != nil {
		t.Fatalf("credentials issued before the restart: %v", err)
	}
	if _, err := connect(t, restarted, revokedCreds); err == nil {
		t.Fatal("a revocation was forgotten by the restart")
	}
}

// deploy/nats includes the generated auth.conf: a standalone nats-server
// reading it trusts exactly this chain.
func TestAStandaloneServerConfiguredFromTheChainEnforcesIt(t *testing.T) {
	trust, err := natsauth.New()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	auth, err := trust.ServerConfig(dir + "/jwt")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir+"/auth.conf", []byte(auth), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := "listen: 127.0.0.1:-1\njetstream { store_dir: \"" + dir + "/js\" }\ninclude ./auth.conf\n"
	if err := os.WriteFile(dir+"/nats-server.conf", []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(dir + "/nats-server.conf")
	if err != nil {
		t.Fatalf("nats-server rejects the configuration: %v", err)
	}
	opts.NoLog, opts.NoSigs = true, true
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("not ready")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })

	if nc, err := nats.Connect(s.ClientURL(), nats.NoReconnect()); err == nil {
		nc.Close()
		t.Fatal("an anonymous connection was accepted")
	}
	creds, _ := mustUser(t, trust, "payment", natsauth.ServiceUser("payment"))
	payment, err := connect(t, s, creds)
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.EnsureStreams(context.Background(), payment.js, 1); err != nil {
		t.Fatalf("JetStream for the account: %v", err)
	}
	if _, err := payment.js.Publish(context.Background(), "payment.v1.ginza.deposit.succeeded", []byte("{}")); err != nil {
		t.Fatalf("payment publishes its own event: %v", err)
	}
	_ = payment.nc.Publish("booking.v1.ginza.confirmed", []byte("forged"))
	if !payment.refused(t, "booking.v1.ginza.confirmed") {
		t.Fatal("payment published a booking event")
	}

	// The clinic issuer revokes over the wire on a standalone server too.
	ci, sys := issuer(t, trust, s)
	creds, pub := clinicUser(t, ci, "ginza")
	ginza, err := connect(t, s, creds, nats.CustomInboxPrefix(natsauth.ClinicInbox("ginza")))
	if err != nil {
		t.Fatalf("a clinic issued on line connects: %v", err)
	}
	revoke(t, ci, sys, pub)
	select {
	case <-ginza.closed:
	case <-time.After(5 * time.Second):
		t.Fatal("the revoked clinic is still connected to the standalone server")
	}
}
