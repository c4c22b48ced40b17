// Package e2e drives the whole platform — catalog, quoting, booking, payment,
// notification and the gateway, each a real service on a real Postgres
// schema, exchanging real JetStream events, paying through stripe-mock and
// mailing through an SMTP sink — the way a patient, a clinic, Stripe and
// finance use it. It is a test module, not a service.
package e2e
