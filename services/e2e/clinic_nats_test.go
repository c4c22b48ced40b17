package e2e

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/saisei-health/platform/pkg/bus"
	"github.com/saisei-health/platform/pkg/natsauth"
)

// clinicSystem is a clinic's NATS client on credentials from the admin
// API, recording the permission errors the server sends it and whether it
// was cut off.
type clinicSystem struct {
	id     string
	nc     *nats.Conn
	js     jetstream.JetStream
	mu     sync.Mutex
	errs   []string
	closed chan struct{}
}

func connectClinic(t *testing.T, natsURL, clinicID string, creds []byte) (*clinicSystem, error) {
	t.Helper()
	c := &clinicSystem{id: clinicID, closed: make(chan struct{})}
	path := filepath.Join(t.TempDir(), clinicID+".creds")
	if err := natsauth.WriteCreds(path, creds); err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(natsURL, nats.UserCredentials(path), nats.CustomInboxPrefix(natsauth.ClinicInbox(clinicID)),
		nats.NoReconnect(),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.errs = append(c.errs, err.Error())
		}),
		nats.ClosedHandler(func(*nats.Conn) { close(c.closed) }))
	if err != nil {
		return nil, err
	}
	t.Cleanup(nc.Close)
	c.nc = nc
	c.js, err = jetstream.New(nc)
	return c, err
}

// read fetches what the clinic's durable consumer holds, acknowledging it.
func (c *clinicSystem) read(t *testing.T) []string {
	t.Helper()
	ctx := context.Background()
	cons, err := c.js.CreateOrUpdateConsumer(ctx, natsauth.ClinicStream, jetstream.ConsumerConfig{
		Durable: natsauth.ClinicDurable(c.id), FilterSubject: "clinic.v1." + c.id + ".>", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatalf("%s creates its durable consumer: %v", c.id, err)
	}
	batch, err := cons.Fetch(20, jetstream.FetchMaxWait(500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for m := range batch.Messages() {
		got = append(got, string(m.Data()))
		_ = m.Ack()
	}
	return got
}

// refused reports whether the server answered a permission violation naming what.
func (c *clinicSystem) refused(what string) bool {
	_ = c.nc.Flush()
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		for _, e := range c.errs {
			if strings.Contains(strings.ToLower(e), "permissions violation") && strings.Contains(e, what) {
				c.mu.Unlock()
				return true
			}
		}
		c.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// Operators issue a clinic's NATS credentials through the admin API and
// revoke them there; the NATS server enforces both: a clinic reads only
// its own notices, and a revoked clinic is cut off at once while the
// other clinic reads on.
func TestOperatorsIssueAndRevokeClinicsNATSCredentials(t *testing.T) {
	p := startPlatform(t)
	ctx := context.Background()
	const ginzaID, osakaID = "tokyo-ginza-namiki-clinic", "osaka-umeda-chayamachi-clinic"
	if err := bus.EnsureStreams(ctx, p.js, 1); err != nil {
		t.Fatal(err)
	}
	notice := func(clinicID, what string) {
		t.Helper()
		if _, err := p.js.Publish(ctx, "clinic.v1."+clinicID+".booking.confirmed", []byte(clinicID+" "+what)); err != nil {
			t.Fatal(err)
		}
	}
	// Notices waiting while both clinics' systems are offline.
	notice(ginzaID, "1")
	notice(osakaID, "1")
	notice(ginzaID, "2")

	// Ginza lets the platform make its key: the credentials file is in the
	// answer, once.
	ginzaCred := p.IssueClinicCredential(t, ginzaID, "").Expect(t, 201).Value
	if ginzaCred.Status != "active" || ginzaCred.ClinicID != ginzaID || ginzaCred.IssuedBy != operator.Subject ||
		!strings.Contains(ginzaCred.Creds, "BEGIN USER NKEY SEED") || !strings.Contains(ginzaCred.Creds, ginzaCred.JWT) {
		t.Fatalf("issued to ginza: %+v", ginzaCred)
	}
	// Osaka keeps its seed: it sends its public key and gets the JWT.
	osakaKey, _ := nkeys.CreateUser()
	osakaPub, _ := osakaKey.PublicKey()
	osakaSeed, _ := osakaKey.Seed()
	osakaCred := p.IssueClinicCredential(t, osakaID, osakaPub).Expect(t, 201).Value
	if osakaCred.PublicKey != osakaPub || osakaCred.Creds != "" || osakaCred.JWT == "" {
		t.Fatalf("issued to osaka for its own key: %+v", osakaCred)
	}
	osakaCreds, err := jwt.FormatUserConfig(osakaCred.JWT, osakaSeed)
	if err != nil {
		t.Fatal(err)
	}

	ginza, err := connectClinic(t, p.natsURL, ginzaID, []byte(ginzaCred.Creds))
	if err != nil {
		t.Fatalf("ginza connects: %v", err)
	}
	osaka, err := connectClinic(t, p.natsURL, osakaID, osakaCreds)
	if err != nil {
		t.Fatalf("osaka connects: %v", err)
	}

	t.Run("each clinic catches up on its own notices, in order, and nothing else", func(t *testing.T) {
		if got := ginza.read(t); strings.Join(got, ",") != ginzaID+" 1,"+ginzaID+" 2" {
			t.Fatalf("ginza read %v", got)
		}
		if got := osaka.read(t); strings.Join(got, ",") != osakaID+" 1" {
			t.Fatalf("osaka read %v", got)
		}
	})

	t.Run("clinic A cannot subscribe to or consume clinic B's subjects, nor publish", func(t *testing.T) {
		if _, err := ginza.nc.SubscribeSync("clinic.v1." + osakaID + ".>"); err != nil {
			t.Fatal(err)
		}
		if !ginza.refused("clinic.v1." + osakaID + ".>") {
			t.Error("ginza subscribed to osaka's subjects")
		}
		short, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		for _, c := range []jetstream.ConsumerConfig{
			{Durable: natsauth.ClinicDurable(ginzaID), FilterSubject: "clinic.v1." + osakaID + ".>"},
			{Durable: natsauth.ClinicDurable(osakaID), FilterSubject: "clinic.v1." + osakaID + ".>"},
			{Durable: natsauth.ClinicDurable(ginzaID)},
		} {
			c.AckPolicy = jetstream.AckExplicitPolicy
			if _, err := ginza.js.CreateOrUpdateConsumer(short, natsauth.ClinicStream, c); err == nil {
				t.Errorf("ginza created consumer %s on %q", c.Durable, c.FilterSubject)
			}
		}
		if err := ginza.nc.Publish("clinic.v1."+ginzaID+".booking.confirmed", []byte("forged")); err != nil {
			t.Fatal(err)
		}
		if !ginza.refused("clinic.v1." + ginzaID + ".booking.confirmed") {
			t.Error("a clinic published a notice")
		}
	})

	t.Run("bad requests are refused, naming the cause", func(t *testing.T) {
		if r := p.IssueClinicCredential(t, "no-such-clinic", ""); r.Status != 404 || r.Problem.Slug() != "not-found" {
			t.Errorf("unknown clinic: %d %s", r.Status, r.Raw)
		}
		if r := p.IssueClinicCredential(t, osakaID, "not-a-key"); r.Status != 422 || len(r.Problem.Errors) != 1 ||
			r.Problem.Errors[0].Field != "public_key" {
			t.Errorf("a bad public key: %d %s", r.Status, r.Raw)
		}
		if r := p.IssueClinicCredential(t, ginzaID, osakaPub); r.Status != 409 || r.Problem.Slug() != "already-exists" {
			t.Errorf("a key issued before: %d %s", r.Status, r.Raw)
		}
		// Another clinic's credential, or none, answers 404.
		if r := p.RevokeClinicCredential(t, ginzaID, osakaCred.ID); r.Status != 404 {
			t.Errorf("osaka's credential revoked under ginza: %d %s", r.Status, r.Raw)
		}
		if r := p.RevokeClinicCredential(t, ginzaID, "not-an-id"); r.Status != 404 {
			t.Errorf("a bogus id: %d %s", r.Status, r.Raw)
		}
	})

	t.Run("a revoked clinic is cut off at once; the other reads on", func(t *testing.T) {
		asked := time.Now()
		revoked := p.RevokeClinicCredential(t, ginzaID, ginzaCred.ID).Expect(t, 200).Value
		if revoked.Status != "revoked" || revoked.RevokedAt == nil || revoked.RevokedBy != operator.Subject {
			t.Fatalf("revoked: %+v", revoked)
		}
		select {
		case <-ginza.closed:
			t.Logf("ginza cut off %v after the revocation was asked for", time.Since(asked).Round(time.Millisecond))
		case <-time.After(2 * time.Second):
			t.Fatal("the revoked clinic is still connected")
		}
		if c, err := connectClinic(t, p.natsURL, ginzaID, []byte(ginzaCred.Creds)); err == nil {
			c.nc.Close()
			t.Fatal("revoked credentials connected again")
		}
		if !osaka.nc.IsConnected() {
			t.Fatal("revoking ginza cut off osaka")
		}
		notice(osakaID, "2")
		if got := osaka.read(t); strings.Join(got, ",") != osakaID+" 2" {
			t.Fatalf("osaka read %v after ginza's revocation", got)
		}
		// Revoking again changes nothing.
		again := p.RevokeClinicCredential(t, ginzaID, ginzaCred.ID).Expect(t, 200).Value
		if !again.RevokedAt.Equal(*revoked.RevokedAt) {
			t.Errorf("a second revocation moved revoked_at: %v → %v", revoked.RevokedAt, again.RevokedAt)
		}
		// Ginza gets new credentials, which work.
		fresh := p.IssueClinicCredential(t, ginzaID, "").Expect(t, 201).Value
		if _, err := connectClinic(t, p.natsURL, ginzaID, []byte(fresh.Creds)); err != nil {
			t.Fatalf("ginza's new credentials: %v", err)
		}
		list := p.ClinicCredentials(t, ginzaID).Expect(t, 200).Value.Items
		if len(list) != 2 || list[0].ID != ginzaCred.ID || list[0].Status != "revoked" || list[1].Status != "active" ||
			list[0].Creds != "" || list[0].JWT != "" {
			t.Fatalf("ginza's credentials: %+v", list)
		}
	})

	t.Run("a clinic holds a bounded number of credentials", func(t *testing.T) {
		for range 4 {
			p.IssueClinicCredential(t, osakaID, "").Expect(t, 201)
		}
		if r := p.IssueClinicCredential(t, osakaID, ""); r.Status != 409 || r.Problem.Slug() != "too-many-credentials" {
			t.Fatalf("a sixth active credential: %d %s", r.Status, r.Raw)
		}
	})
}
