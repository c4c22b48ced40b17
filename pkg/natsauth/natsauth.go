// Package natsauth is the platform's NATS trust chain in NATS's own
// decentralized model: an operator signs the accounts, the application
// account signs one user per party, and the server enforces each user's
// permissions. Nothing is shared: every service and every clinic connects
// with credentials of its own (a standard .creds file, usable with
// `nats --creds` and nats.UserCredentials), and a revoked user is cut off
// by the server at once.
//
// A service publishes only its own event tree and administers JetStream;
// a clinic may only read its own subjects, clinic.v1.<clinic_id>.>,
// through a durable consumer named after it, receiving on an inbox prefix
// of its own so no other party's replies reach it; it publishes nothing.
package natsauth

import (
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"github.com/saisei-health/platform/pkg/subject"
)

// AppAccount is the application account's name: the streams live in it.
const AppAccount = "SAISEI"

// ClinicStream is the stream holding every clinic's notices.
const ClinicStream = "CLINIC"

// Trust holds the operator's and the accounts' keys and issues users.
//
// Besides the identity keys it holds two signing keys, for the party that
// issues and revokes clinics' credentials on line (ClinicIssuer) without
// the identity keys: a signing key of the application account scoped to
// clinics, so whatever it signs has exactly a clinic's permissions, and a
// signing key of the operator, to re-sign the account with its revocations.
type Trust struct {
	mu           sync.Mutex
	operator     nkeys.KeyPair
	opSigner     nkeys.KeyPair
	system       nkeys.KeyPair
	app          nkeys.KeyPair
	clinicSigner nkeys.KeyPair
	opClaims     *jwt.OperatorClaims
	sysJWT       string
	appJWT       string
	path         string // where the chain is kept, if anywhere
}

// New creates a fresh trust chain: operator, system account and the
// application account with JetStream enabled.
func New() (*Trust, error) {
	op, err := nkeys.CreateOperator()
	if err != nil {
		return nil, err
	}
	opSigner, err := nkeys.CreateOperator()
	if err != nil {
		return nil, err
	}
	sys, err := nkeys.CreateAccount()
	if err != nil {
		return nil, err
	}
	app, err := nkeys.CreateAccount()
	if err != nil {
		return nil, err
	}
	clinicSigner, err := nkeys.CreateAccount()
	if err != nil {
		return nil, err
	}
	return fromKeys(op, opSigner, sys, app, clinicSigner)
}

func fromKeys(op, opSigner, sys, app, clinicSigner nkeys.KeyPair) (*Trust, error) {
	t := &Trust{operator: op, opSigner: opSigner, system: sys, app: app, clinicSigner: clinicSigner}
	opPub, _ := op.PublicKey()
	opSignerPub, _ := opSigner.PublicKey()
	sysPub, _ := sys.PublicKey()
	t.opClaims = jwt.NewOperatorClaims(opPub)
	t.opClaims.Name = "saisei"
	t.opClaims.SystemAccount = sysPub
	t.opClaims.SigningKeys.Add(opSignerPub)
	if _, err := t.opClaims.Encode(op); err != nil {
		return nil, err
	}
	sc := jwt.NewAccountClaims(sysPub)
	sc.Name = "SYS"
	var err error
	if t.sysJWT, err = sc.Encode(op); err != nil {
		return nil, err
	}
	if t.appJWT, err = t.encodeApp(); err != nil {
		return nil, err
	}
	return t, nil
}

// encodeApp signs the application account's claims: JetStream, and the
// clinics' scoped signing key with its permission template.
func (t *Trust) encodeApp() (string, error) {
	pub, _ := t.app.PublicKey()
	ac := jwt.NewAccountClaims(pub)
	ac.Name = AppAccount
	ac.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: -1, Consumer: -1}
	scope := jwt.NewUserScope()
	scope.Key, _ = t.clinicSigner.PublicKey()
	scope.Role = "clinic"
	scope.Description = "clinic systems: each reads only clinic.v1.<its clinic_id tag>.>"
	p := ClinicScope()
	scope.Template.Pub.Allow.Add(p.Publish...)
	scope.Template.Sub.Allow.Add(p.Subscribe...)
	ac.SigningKeys.AddScopedSigner(scope)
	return ac.Encode(t.operator)
}

// Configure makes opts a server that trusts only this operator: every
// connection needs a user signed by one of its accounts. Account JWTs are
// kept in jwtDir by a "full" resolver, which takes account updates over
// the wire ($SYS.REQ.CLAIMS.UPDATE, signed by the operator), so a
// ClinicIssuer in another process revokes a clinic at once. Revocations
// already in jwtDir outlive the restart: they are carried into the
// account JWT this chain signs now.
func (t *Trust) Configure(opts *server.Options, jwtDir string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	resolver, err := server.NewDirAccResolver(jwtDir, 0, 2*time.Minute, server.NoDelete)
	if err != nil {
		return err
	}
	sysPub, _ := t.system.PublicKey()
	appPub, _ := t.app.PublicKey()
	appJWT := t.appJWT
	if stored, err := resolver.LoadAcc(appPub); err == nil {
		if appJWT, err = carryRevocations(appJWT, stored, t.operator); err != nil {
			return err
		}
	}
	if err := resolver.Store(sysPub, t.sysJWT); err != nil {
		return err
	}
	if err := resolver.Store(appPub, appJWT); err != nil {
		return err
	}
	opts.TrustedOperators = []*jwt.OperatorClaims{t.opClaims}
	opts.SystemAccount = sysPub
	opts.AccountResolver = resolver
	opts.NoAuthUser, opts.Users, opts.Nkeys = "", nil, nil
	return nil
}

// carryRevocations returns fresh, re-signed with the revocations of
// stored added.
func carryRevocations(fresh, stored string, signer nkeys.KeyPair) (string, error) {
	old, err := jwt.DecodeAccountClaims(stored)
	if err != nil {
		return fresh, nil // an unreadable file is replaced
	}
	if len(old.Revocations) == 0 {
		return fresh, nil
	}
	ac, err := jwt.DecodeAccountClaims(fresh)
	if err != nil {
		return "", err
	}
	for user, at := range old.Revocations {
		if ac.Revocations[user] < at {
			ac.RevokeAt(user, time.Unix(at, 0))
		}
	}
	return ac.Encode(signer)
}

// Permissions are the subjects a user may publish to and subscribe to;
// anything not allowed is refused by the server.
type Permissions struct {
	Publish   []string
	Subscribe []string
}

// Service is what a platform service may do: publish its own event trees
// (booking.v1.>, …), receive replies on the standard inbox, set up the
// streams (every service ensures them at start), and create, read,
// acknowledge and retire consumers on the streams it consumes, and no
// others. A service given ">" as its tree (the operator's tools) may do
// anything.
func Service(trees []string, consumes ...string) Permissions {
	p := Permissions{
		Publish: append(append([]string{}, trees...), "$JS.API.INFO", "$JS.API.STREAM.INFO.*", "$JS.API.STREAM.CREATE.*",
			"$JS.API.STREAM.UPDATE.*", "$JS.API.STREAM.NAMES", "$JS.API.STREAM.LIST"),
		Subscribe: []string{"_INBOX.>"},
	}
	for _, stream := range consumes {
		// CREATE/INFO/DELETE.<stream>.…, MSG.NEXT and DURABLE.CREATE are
		// two tokens before the stream.
		p.Publish = append(p.Publish, "$JS.API.CONSUMER.*."+stream, "$JS.API.CONSUMER.*."+stream+".>",
			"$JS.API.CONSUMER.MSG.NEXT."+stream+".*", "$JS.API.CONSUMER.DURABLE.CREATE."+stream+".*",
			"$JS.ACK."+stream+".>", "$JS.FC."+stream+".>")
	}
	return p
}

// ServiceUser is the permissions of the named platform service: its
// event tree (ServiceTrees) and the streams it consumes (ServiceConsumes).
func ServiceUser(name string) Permissions {
	return Service([]string{ServiceTrees[name]}, ServiceConsumes[name]...)
}

// Operator is what the operator's tools may do: anything (dead letters
// are replayed onto any subject).
func Operator() Permissions { return Permissions{Publish: []string{">"}, Subscribe: []string{">"}} }

// ServiceConsumes are the streams whose consumers each service creates,
// reads or retires (bus.RetireConsumer).
var ServiceConsumes = map[string][]string{
	"catalog":      nil,
	"quoting":      {"CATALOG", "BOOKING"},
	"booking":      {"PAYMENT", "CATALOG"},
	"payment":      {"BOOKING"},
	"notification": {"BOOKING", "QUOTING", "PAYMENT"},
}

// ServiceTrees are the event trees each service publishes: its user may
// publish no other event.
var ServiceTrees = map[string]string{"catalog": subject.CatalogTree, "quoting": subject.QuotingTree,
	"booking": subject.BookingTree, "payment": subject.PaymentTree, "notification": subject.ClinicTree}

// ClinicDurable is the durable consumer a clinic reads its notices with.
func ClinicDurable(clinicID string) string { return "clinic-" + clinicID }

// ClinicInbox is the inbox prefix a clinic's connection must use
// (nats.CustomInboxPrefix): replies to it go nowhere else.
func ClinicInbox(clinicID string) string { return "_INBOX_" + clinicID }

// ClinicTag is the user-JWT tag naming a clinic's id (clinic:<id>); the
// clinics' scoped signing key expands its permission template with it.
const ClinicTag = "clinic"

// ClinicScope is the permission template of the clinics' scoped signing
// key: Clinic with the clinic id taken from the user's clinic tag. The
// server applies it to every user that key signs, whatever the user JWT
// says, so the issuer can mint clinic users and nothing else.
func ClinicScope() Permissions { return Clinic("{{tag(" + ClinicTag + ")}}") }

// Clinic is what a clinic's system may do: create (with its own filter)
// and read its durable consumer on the CLINIC stream, acknowledge what it
// read, and receive on its own inbox. It publishes no event.
func Clinic(clinicID string) Permissions {
	durable := ClinicDurable(clinicID)
	return Permissions{
		Publish: []string{
			// The filtered create subject names the filter, so the server
			// refuses a filter beyond the clinic's own subjects.
			fmt.Sprintf("$JS.API.CONSUMER.CREATE.%s.%s.clinic.v1.%s.>", ClinicStream, durable, clinicID),
			fmt.Sprintf("$JS.API.CONSUMER.INFO.%s.%s", ClinicStream, durable),
			fmt.Sprintf("$JS.API.CONSUMER.MSG.NEXT.%s.%s", ClinicStream, durable),
			fmt.Sprintf("$JS.ACK.%s.%s.>", ClinicStream, durable),
		},
		Subscribe: []string{ClinicInbox(clinicID) + ".>"},
	}
}

// User issues a user of the application account named name with
// permissions p, and returns its credentials file and public key.
func (t *Trust) User(name string, p Permissions) (creds []byte, pub string, err error) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		return nil, "", err
	}
	pub, _ = kp.PublicKey()
	uc := jwt.NewUserClaims(pub)
	uc.Name = name
	uc.Pub.Allow.Add(p.Publish...)
	uc.Sub.Allow.Add(p.Subscribe...)
	// Only the permissions above: no responses to arbitrary requests.
	t.mu.Lock()
	encoded, err := uc.Encode(t.app)
	t.mu.Unlock()
	if err != nil {
		return nil, "", err
	}
	seed, err := kp.Seed()
	if err != nil {
		return nil, "", err
	}
	creds, err = jwt.FormatUserConfig(encoded, seed)
	return creds, pub, err
}
