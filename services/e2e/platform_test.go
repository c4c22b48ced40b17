package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stripe/stripe-go/v76/webhook"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/protobuf/proto"

	"github.com/saisei-health/platform/pkg/bus"
	"github.com/saisei-health/platform/pkg/devstack"
	"github.com/saisei-health/platform/pkg/devstack/devtest"
	"github.com/saisei-health/platform/pkg/events/notificationv1"
	"github.com/saisei-health/platform/pkg/identity"
	"github.com/saisei-health/platform/pkg/natsauth"
	"github.com/saisei-health/platform/pkg/servicehost"
	booking "github.com/saisei-health/platform/services/booking/server"
	catalog "github.com/saisei-health/platform/services/catalog/server"
	gateway "github.com/saisei-health/platform/services/gateway/server"
	notification "github.com/saisei-health/platform/services/notification/server"
	payment "github.com/saisei-health/platform/services/payment/server"
	quoting "github.com/saisei-health/platform/services/quoting/server"
)

func TestMain(m *testing.M) { os.Exit(devtest.Main(m)) }

const (
	webhookSecret = "whsec_e2e_test"
)

// platform is every service running in this process against real
// dependencies, each with its own tracer provider feeding one exporter.
type platform struct {
	gateway string
	stripe  *devstack.StripeProxy
	mail    *devstack.MailSink
	spans   *tracetest.InMemoryExporter
	js      jetstream.JetStream
	natsURL string
	trust   *natsauth.Trust
	clock   *devtest.Clock
	// issuer is the platform's OpenID Connect issuer; tests mint tokens
	// with it, as a login would.
	issuer   *devtest.Issuer
	tokensMu sync.Mutex
	tokens   map[identity.Principal]string
}

func startPlatform(t *testing.T) *platform {
	t.Helper()
	p := &platform{spans: tracetest.NewInMemoryExporter(), stripe: devtest.StripeProxy(t), mail: devtest.MailSink(t), clock: &devtest.Clock{},
		issuer: devtest.NewIssuer(t, "catalog", "quoting", "booking", "payment", "notification", "gateway"),
		tokens: map[identity.Principal]string{}}
	admin := devtest.NewDatabase(t)
	// NATS as make run has it: no anonymous connections, each service on a
	// user allowed only its own event tree, the clinic on its own.
	natsURL, trust := devtest.SecureNATS(t)
	p.natsURL, p.trust = natsURL, trust
	_, js, err := bus.Connect(natsURL, "e2e-observer", nats.UserCredentials(devtest.Creds(t, trust, "observer", natsauth.Operator())))
	if err != nil {
		t.Fatal(err)
	}
	p.js = js

	base := func(name string) (servicehost.Config, string) {
		addr, url := devtest.Addr(t)
		return servicehost.Config{Name: name, Identity: p.issuer.Config(name), HTTPAddr: addr, DatabaseURL: devtest.ServiceDSN(t, admin, name),
			NATSURL: natsURL, NATSCreds: devtest.Creds(t, trust, name, natsauth.ServiceUser(name)), StreamReplicas: 1}, url
	}
	catCfg, catURL := base("catalog")
	quoCfg, quoURL := base("quoting")
	payCfg, payURL := base("payment")
	bokCfg, bokURL := base("booking")
	notCfg, notURL := base("notification")
	gwAddr, gwURL := devtest.Addr(t)
	p.gateway = gwURL

	run := func(name, url string, fn func(ctx context.Context, deps servicehost.Deps) error) {
		deps := devtest.Deps(t, name, p.spans)
		deps.Now = p.clock.Now
		devtest.RunService(t, url, func(ctx context.Context) error { return fn(ctx, deps) })
	}
	run("catalog", catURL, func(ctx context.Context, d servicehost.Deps) error {
		return catalog.Run(ctx, catalog.Config{Config: catCfg, Seed: true, ClinicIssuer: devtest.ClinicIssuer(t, trust)}, d)
	})
	run("quoting", quoURL, func(ctx context.Context, d servicehost.Deps) error {
		return quoting.Run(ctx, quoting.Config{Config: quoCfg, CatalogURL: catURL, DataKeyset: devtest.Keyset(t)}, d)
	})
	run("payment", payURL, func(ctx context.Context, d servicehost.Deps) error {
		return payment.Run(ctx, payment.Config{Config: payCfg, StripeAPIKey: "sk_test_e2e",
			StripeAPIBase: p.stripe.URL, StripeWebhookSecret: webhookSecret,
			BalanceRetry: []time.Duration{100 * time.Millisecond}}, d)
	})
	run("booking", bokURL, func(ctx context.Context, d servicehost.Deps) error {
		return booking.Run(ctx, booking.Config{Config: bokCfg, QuotingURL: quoURL, PaymentURL: payURL, ExpiryPoll: 100 * time.Millisecond}, d)
	})
	notifCfg := notification.Config{Config: notCfg, DataKeyset: devtest.Keyset(t)}
	notifCfg.Mail.SMTPAddr, notifCfg.Mail.From, notifCfg.Mail.AllowPlaintext = p.mail.Addr(), "Saisei Care <care@saisei.health>", true
	run("notification", notURL, func(ctx context.Context, d servicehost.Deps) error {
		return notification.Run(ctx, notifCfg, d)
	})
	run("gateway", gwURL, func(ctx context.Context, d servicehost.Deps) error {
		return gateway.Run(ctx, gateway.Config{HTTPAddr: gwAddr, CatalogURL: catURL, QuotingURL: quoURL, BookingURL: bokURL, PaymentURL: payURL,
			NotificationURL: notURL,
			Identity:        p.issuer.Config("gateway"),
			// The tests are one client sending as fast as it can.
			RateLimit: gateway.RateLimits{PerClient: 10_000, Burst: 10_000, StripeCalls: 10_000, StripeBurst: 10_000}}, d)
	})
	return p
}

func (p *platform) waitForStatus(t *testing.T, bookingID, status string) Result[BookingWithPayments] {
	t.Helper()
	var last Result[BookingWithPayments]
	devtest.Eventually(t, "booking "+bookingID+" to be "+status, func() bool {
		last = p.Booking(t, bookingID)
		return last.Status == 200 && last.Value.Status == status
	})
	return last
}

// stripeEvent builds a webhook event as Stripe would send it, signed with
// the endpoint secret.
func stripeEvent(t *testing.T, id, typ string, intent paymentIntent) (payload []byte, signature string) {
	t.Helper()
	intent.Object = "payment_intent"
	ev := stripeEventJSON{ID: id, Object: "event", APIVersion: "2023-10-16", Created: time.Now().Unix(),
		Type: typ, PendingWebhooks: 1}
	ev.Data.Object = intent
	payload, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	signed := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: webhookSecret, Timestamp: time.Now()})
	return payload, signed.Header
}

// clinicInbox reads a clinic's notices the way a clinic would: a durable
// consumer on its own subjects, clinic.v1.<clinic_id>.>.
type clinicInbox struct {
	mu      sync.Mutex
	notices []*notificationv1.ClinicBookingNotice
	ids     map[string]int
}

func (p *platform) subscribeClinic(t *testing.T, clinicID string) *clinicInbox {
	t.Helper()
	in := &clinicInbox{ids: map[string]int{}}
	ctx := context.Background()
	if err := bus.EnsureStreams(ctx, p.js, 1); err != nil {
		t.Fatal(err)
	}
	// The clinic reads with its own credentials, issued by an operator
	// through the admin API, as a clinic's system would.
	_, clinicJS, err := bus.Connect(p.natsURL, "clinic "+clinicID,
		nats.UserCredentials(p.clinicCreds(t, clinicID)), nats.CustomInboxPrefix(natsauth.ClinicInbox(clinicID)))
	if err != nil {
		t.Fatal(err)
	}
	cons, err := clinicJS.CreateOrUpdateConsumer(ctx, natsauth.ClinicStream, jetstream.ConsumerConfig{
		Durable: natsauth.ClinicDurable(clinicID), FilterSubject: "clinic.v1." + clinicID + ".>", AckPolicy: jetstream.AckExplicitPolicy,
	})
	if err != nil {
		t.Fatal(err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		var n notificationv1.ClinicBookingNotice
		if err := proto.Unmarshal(m.Data(), &n); err == nil {
			in.mu.Lock()
			in.notices = append(in.notices, &n)
			in.ids[m.Headers().Get(bus.HeaderEventID)]++
			in.mu.Unlock()
		}
		_ = m.Ack()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cc.Stop)
	return in
}

// clinicCreds issues NATS credentials to clinicID through the admin API
// and returns the path of the credentials file.
func (p *platform) clinicCreds(t *testing.T, clinicID string) string {
	t.Helper()
	issued := p.IssueClinicCredential(t, clinicID, "").Expect(t, 201)
	path := filepath.Join(t.TempDir(), clinicID+".creds")
	if err := natsauth.WriteCreds(path, []byte(issued.Value.Creds)); err != nil {
		t.Fatal(err)
	}
	return path
}

func (in *clinicInbox) kindsFor(bookingID string) []notificationv1.NoticeKind {
	in.mu.Lock()
	defer in.mu.Unlock()
	var out []notificationv1.NoticeKind
	for _, n := range in.notices {
		if n.GetBooking().GetId() == bookingID {
			out = append(out, n.GetKind())
		}
	}
	return out
}

func findRequest(reqs []devstack.StripeRequest, method, pathPrefix, idempotencyKey string) (devstack.StripeRequest, bool) {
	for _, r := range reqs {
		if r.Method == method && strings.HasPrefix(r.Path, pathPrefix) && r.IdempotencyKey == idempotencyKey {
			return r, true
		}
	}
	return devstack.StripeRequest{}, false
}
