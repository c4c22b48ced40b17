package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"
)

// The treatment every journey books: adipose MSC for stroke in Ginza at
// 100 million cells, as the end-to-end test does.
const (
	treatmentID = "ginza-adipose-msc-stroke-iv"
	dose        = int64(100_000_000)
)

var languages = []string{"en", "ko", "ja", "zh"}

// clinicIP is where the clinic's staff and systems call from.
const clinicIP = "192.0.2.1"

// journey is one patient's whole booking, as the run drove it.
type journey struct {
	N         int
	Key       string // the booking's Idempotency-Key
	Email     string
	QCFails   bool
	QuoteID   string
	BookingID string
	ClinicID  string
	Deposit   int64
	Balance   int64
	Total     int64
	// Final is the status the journey ended in (as the API last said).
	Final    string
	Err      error
	Started  time.Time
	Finished time.Time
}

// expectedFinal is where the journey must end.
func (j *journey) expectedFinal() string {
	if j.QCFails {
		return "qc_failed"
	}
	return "administered"
}

// driver runs journeys through the gateway.
type driver struct {
	c           *client
	stripe      *client // Stripe's webhook deliveries
	webhookPath string
	secret      string
	// customerOf is the Stripe customer payment created for a booking (as
	// the recording proxy saw it), which a succeeded intent names.
	customerOf func(bookingID string) string
	runID      string
	seed       uint64
	qcFailRate float64
	dupRate    float64
	staleRate  float64

	clinics *clinicTokens
}

// clinicTokens are the clinics' staff tokens, one per clinic, shared by
// the journeys.
type clinicTokens struct {
	mu     sync.Mutex
	tokens map[string]string
}

// bookingView is the part of GET /v1/bookings/{id} a journey reads.
type bookingView struct {
	ID       string        `json:"id"`
	Status   string        `json:"status"`
	ClinicID string        `json:"clinic_id"`
	Payments []paymentView `json:"payments"`
}

type paymentView struct {
	Stage           string `json:"stage"`
	Status          string `json:"status"`
	PaymentIntentID string `json:"payment_intent_id"`
}

// run drives journey j to its end; what went wrong is in j.Err.
func (d *driver) run(ctx context.Context, j *journey) {
	j.Started = time.Now()
	defer func() { j.Finished = time.Now() }()
	rng := rand.New(rand.NewPCG(d.seed, uint64(j.N)))
	// This patient's own address; Stripe calls from one of its twelve.
	jd := *d
	jd.c = d.c.from(fmt.Sprintf("10.%d.%d.%d", j.N>>16&255, j.N>>8&255, j.N&255))
	jd.stripe = d.c.from(fmt.Sprintf("3.18.12.%d", 1+j.N%12))
	j.Err = jd.walk(ctx, rng, j)
}

func (d *driver) walk(ctx context.Context, rng *rand.Rand, j *journey) error {
	subject := fmt.Sprintf("chaos-%s-%d", d.runID, j.N)
	token, err := d.c.token(ctx, "patient", subject, "")
	if err != nil {
		return err
	}
	// 1. A quote. Quotes take no Idempotency-Key: a retry after a lost
	// answer issues another quote, which simply expires unbooked.
	yes, no := true, false
	a, err := d.c.do(ctx, "POST", "/v1/quotes", token, map[string]any{
		"treatment_id": treatmentID, "dose_cells": dose, "currency": "jpy",
		"patient": map[string]string{"name": "Chaos Patient " + fmt.Sprint(j.N), "email": j.Email,
			"country": "KR", "language": languages[j.N%len(languages)]},
		"screening": map[string]*bool{"diagnosis_confirmed": &yes, "severe_organ_disease": &no, "can_travel": &yes},
	}, nil)
	if err != nil {
		return err
	}
	if a.Status != http.StatusCreated {
		return fmt.Errorf("quote: %d %s", a.Status, a.Body)
	}
	var q struct {
		ID       string                  `json:"id"`
		ClinicID string                  `json:"clinic_id"`
		Total    struct{ Amount int64 }  `json:"total"`
		Deposit  *struct{ Amount int64 } `json:"deposit"`
		Balance  *struct{ Amount int64 } `json:"balance"`
	}
	if err := a.decode(&q); err != nil {
		return err
	}
	if q.Deposit == nil || q.Balance == nil {
		return fmt.Errorf("quote %s is not bookable: %s", q.ID, a.Body)
	}
	j.QuoteID, j.ClinicID, j.Total, j.Deposit, j.Balance = q.ID, q.ClinicID, q.Total.Amount, q.Deposit.Amount, q.Balance.Amount

	// 2. The booking, retried with the same key until it answers.
	a, err = d.c.do(ctx, "POST", "/v1/bookings", token, map[string]string{"quote_id": q.ID}, map[string]string{"Idempotency-Key": j.Key})
	if err != nil {
		return err
	}
	if a.Status != http.StatusCreated {
		return fmt.Errorf("booking: %d %s", a.Status, a.Body)
	}
	var created struct {
		ID      string `json:"id"`
		Deposit struct {
			PaymentIntentID string `json:"payment_intent_id"`
			Amount          struct{ Amount int64 }
		} `json:"deposit"`
	}
	if err := a.decode(&created); err != nil {
		return err
	}
	j.BookingID = created.ID
	if created.Deposit.PaymentIntentID == "" {
		return fmt.Errorf("booking %s has no deposit intent: %s", j.BookingID, a.Body)
	}

	// 3. The patient pays; Stripe tells the platform, duplicated and out of
	// order at times, redelivering until it answers 2xx.
	customer := d.customerOf(j.BookingID)
	if err := d.paid(ctx, rng, j, "deposit", created.Deposit.PaymentIntentID, j.Deposit, customer); err != nil {
		return err
	}
	if _, err := d.waitFor(ctx, token, j, "confirmed"); err != nil {
		return err
	}

	// 4. The clinic harvests and cultures; some cells fail QC.
	clinic, err := d.clinicToken(ctx, j.ClinicID)
	if err != nil {
		return err
	}
	if err := d.report(ctx, clinic, token, j, "harvest", nil, "culturing"); err != nil {
		return err
	}
	qc := map[string]any{"cell_count": 112_000_000, "viability_pct": 94.5, "sterility": "pass", "endotoxin": "pass"}
	next := "awaiting_balance"
	if j.QCFails {
		qc["sterility"], next = "fail", "qc_failed"
	}
	if err := d.report(ctx, clinic, token, j, "cells-ready", qc, next); err != nil {
		return err
	}
	if j.QCFails {
		j.Final = "qc_failed"
		return nil
	}

	// 5. Payment charges the balance off-session; Stripe reports it.
	v, err := d.waitUntil(ctx, token, j, "the balance intent", func(v bookingView) bool {
		return slices.ContainsFunc(v.Payments, func(p paymentView) bool {
			return p.Stage == "balance" && p.PaymentIntentID != ""
		})
	})
	if err != nil {
		return err
	}
	var balanceIntent string
	for _, p := range v.Payments {
		if p.Stage == "balance" {
			balanceIntent = p.PaymentIntentID
		}
	}
	if err := d.paid(ctx, rng, j, "balance", balanceIntent, j.Balance, customer); err != nil {
		return err
	}
	if _, err := d.waitFor(ctx, token, j, "ready_for_administration"); err != nil {
		return err
	}

	// 6. The cells are given.
	return d.report(ctx, clinic, token, j, "administered", nil, "administered")
}

// report is a clinic's report on the booking. A retry of a report whose
// first answer was lost meets 409 invalid-transition; the clinic's system
// then reads the booking and is content if it moved on.
func (d *driver) report(ctx context.Context, clinicToken, patientToken string, j *journey, what string, body any, want string) error {
	a, err := d.c.from(clinicIP).do(ctx, "POST", "/v1/clinic/bookings/"+j.BookingID+"/"+what, clinicToken, body, nil)
	if err != nil {
		return err
	}
	switch {
	case a.Status == http.StatusOK:
		var b bookingView
		if err := a.decode(&b); err != nil {
			return err
		}
		j.Final = b.Status
		if b.Status != want {
			return fmt.Errorf("%s: booking %s is %s, want %s", what, j.BookingID, b.Status, want)
		}
		return nil
	case a.Status == http.StatusConflict && a.problemType() == "invalid-transition":
		_, err := d.waitFor(ctx, patientToken, j, want)
		return err
	default:
		return fmt.Errorf("%s of %s: %d %s", what, j.BookingID, a.Status, a.Body)
	}
}

// waitFor polls the booking until it is in status.
func (d *driver) waitFor(ctx context.Context, token string, j *journey, status string) (bookingView, error) {
	return d.waitUntil(ctx, token, j, status, func(v bookingView) bool { return v.Status == status })
}

func (d *driver) waitUntil(ctx context.Context, token string, j *journey, what string, ok func(bookingView) bool) (bookingView, error) {
	for {
		a, err := d.c.do(ctx, "GET", "/v1/bookings/"+j.BookingID, token, nil, nil)
		if err != nil {
			return bookingView{}, fmt.Errorf("waiting for %s: %w", what, err)
		}
		var v bookingView
		if a.Status == http.StatusOK {
			if err := a.decode(&v); err != nil {
				return v, err
			}
			j.Final = v.Status
			if ok(v) {
				return v, nil
			}
		} else if a.Status != http.StatusNotFound {
			// 404 only while the booking is not yet readable.
			return v, fmt.Errorf("booking %s: %d %s", j.BookingID, a.Status, a.Body)
		}
		select {
		case <-ctx.Done():
			return v, fmt.Errorf("booking %s still %s, waiting for %s: %w", j.BookingID, v.Status, what, errGaveUp)
		case <-time.After(300*time.Millisecond + rand.N(200*time.Millisecond)):
		}
	}
}

func (d *driver) clinicToken(ctx context.Context, clinicID string) (string, error) {
	d.clinics.mu.Lock()
	defer d.clinics.mu.Unlock()
	if t, ok := d.clinics.tokens[clinicID]; ok {
		return t, nil
	}
	t, err := d.c.from(clinicIP).token(ctx, "clinic", "chaos-staff-"+clinicID, clinicID)
	if err != nil {
		return "", err
	}
	d.clinics.tokens[clinicID] = t
	return t, nil
}

// paid delivers Stripe's events for an intent that succeeded: the
// succeeded event (sometimes twice, at once), and sometimes an older
// "processing" event after it, as Stripe may.
func (d *driver) paid(ctx context.Context, rng *rand.Rand, j *journey, stage, intentID string, amount int64, customer string) error {
	now := time.Now()
	intent := func(status string, received int64) map[string]any {
		pi := map[string]any{"id": intentID, "object": "payment_intent", "amount": amount, "amount_received": received,
			"currency": "jpy", "status": status, "customer": customer, "payment_method": "pm_card_visa",
			"metadata": map[string]string{"booking_id": j.BookingID}}
		if status == "succeeded" {
			pi["latest_charge"] = "ch_" + strings.ReplaceAll(j.BookingID, "-", "") + "_" + stage
		}
		return pi
	}
	succeeded := stripeEvent("evt_"+j.BookingID+"_"+stage+"_succeeded", "payment_intent.succeeded", now, intent("succeeded", amount))
	deliveries := [][]byte{succeeded}
	if rng.Float64() < d.dupRate {
		deliveries = append(deliveries, succeeded)
	}
	if rng.Float64() < d.staleRate {
		deliveries = append(deliveries, stripeEvent("evt_"+j.BookingID+"_"+stage+"_processing", "payment_intent.processing",
			now.Add(-2*time.Second), intent("processing", 0)))
	}
	// Duplicates are delivered concurrently, the way Stripe's retries and
	// a second endpoint's deliveries race.
	errs := make(chan error, len(deliveries))
	for _, payload := range deliveries {
		go func() { errs <- d.deliver(ctx, payload) }()
	}
	var all []error
	for range deliveries {
		all = append(all, <-errs)
	}
	return errors.Join(all...)
}

// deliver is one Stripe webhook event, signed afresh on every attempt and
// sent again until it is answered 2xx, as Stripe does.
func (d *driver) deliver(ctx context.Context, payload []byte) error {
	for {
		signed := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: d.secret, Timestamp: time.Now()})
		a, err := d.stripe.do(ctx, "POST", d.webhookPath, "", payload, map[string]string{"Stripe-Signature": signed.Header})
		if err != nil {
			return err
		}
		if a.Status/100 == 2 {
			return nil
		}
		if a.Status != http.StatusConflict {
			return fmt.Errorf("webhook: %d %s", a.Status, a.Body)
		}
		// 409: the event raced its duplicate; Stripe sends it again.
		select {
		case <-ctx.Done():
			return errGaveUp
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// stripeEvent is a webhook event as Stripe builds it.
func stripeEvent(id, typ string, created time.Time, object map[string]any) []byte {
	b, _ := json.Marshal(map[string]any{"id": id, "object": "event", "api_version": "2023-10-16",
		"created": created.Unix(), "type": typ, "pending_webhooks": 1, "livemode": false,
		"data": map[string]any{"object": object}})
	return b
}
