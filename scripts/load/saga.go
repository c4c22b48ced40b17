package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"
)

// The saga's treatment: adipose MSC for stroke in Ginza, 100 million cells.
const (
	treatmentID = "ginza-adipose-msc-stroke-iv"
	dose        = int64(100_000_000)
)

// The steps a saga is timed in, in order.
var steps = []string{
	"quote", "booking", "deposit webhook", "deposit webhook → confirmed", "deposit webhook → clinic notice",
	"harvest", "cells ready", "cells ready → balance charged", "balance webhook → ready", "administered", "whole saga",
}

// api calls the gateway. A load test does not retry: an error is counted.
type api struct {
	base string
	http *http.Client
	// ip is the client's address as a CDN would report it
	// (X-Forwarded-For): each saga's patient has its own, so make run's
	// per-client rate limit sees them apart (GATEWAY_CLIENT_IP_HEADER).
	ip string
}

// from is the api called from ip.
func (a *api) from(ip string) *api {
	cp := *a
	cp.ip = ip
	return &cp
}

func (a *api) call(ctx context.Context, method, path, token string, body any, header map[string]string, into any) (int, error) {
	var raw []byte
	switch b := body.(type) {
	case nil:
	case []byte:
		raw = b
	default:
		raw, _ = json.Marshal(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, bytes.NewReader(raw))
	if err != nil {
		return 0, err
	}
	if raw != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if a.ip != "" {
		req.Header.Set("X-Forwarded-For", a.ip)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode >= 300 {
		return resp.StatusCode, fmt.Errorf("%s %s: %d %.200s", method, path, resp.StatusCode, b)
	}
	if into != nil {
		return resp.StatusCode, json.Unmarshal(b, into)
	}
	return resp.StatusCode, nil
}

func (a *api) token(ctx context.Context, role, subject, clinic string) (string, error) {
	var t struct {
		Token string `json:"token"`
	}
	_, err := a.call(ctx, "POST", "/v1/dev/tokens", "", map[string]string{"role": role, "subject": subject, "clinic_id": clinic}, nil, &t)
	return t.Token, err
}

// sagaRunner drives sagas and keeps their step timings.
type sagaRunner struct {
	api     *api
	events  *eventWatch
	secret  string
	patient string
	staff   string
	runID   string

	stats *sagaStats
}

// sagaStats are the runner's step timings and failures, shared by sagas.
type sagaStats struct {
	mu      sync.Mutex
	timings map[string][]time.Duration
	errors  []string
	done    int
}

func (r *sagaRunner) took(step string, d time.Duration) {
	r.stats.mu.Lock()
	r.stats.timings[step] = append(r.stats.timings[step], d)
	r.stats.mu.Unlock()
}

func (r *sagaRunner) failed(n int, err error) {
	st := r.stats
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.errors) < 20 {
		st.errors = append(st.errors, fmt.Sprintf("saga %d: %v", n, err))
	} else {
		st.errors[len(st.errors)-1] = fmt.Sprintf("… and more; last: saga %d: %v", n, err)
	}
}

// timed runs f as step.
func (r *sagaRunner) timed(step string, f func() error) error {
	start := time.Now()
	if err := f(); err != nil {
		return fmt.Errorf("%s: %w", step, err)
	}
	r.took(step, time.Since(start))
	return nil
}

// saga is one patient's whole booking.
func (r *sagaRunner) saga(ctx context.Context, n int) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	rr := *r
	rr.api = r.api.from(fmt.Sprintf("10.%d.%d.%d", (n+1)>>16&255, (n+1)>>8&255, (n+1)&255))
	return rr.walk(ctx, n)
}

func (r *sagaRunner) walk(ctx context.Context, n int) error {
	start := time.Now()
	yes, no := true, false
	var q struct {
		ID      string                  `json:"id"`
		Deposit *struct{ Amount int64 } `json:"deposit"`
		Balance *struct{ Amount int64 } `json:"balance"`
	}
	if err := r.timed("quote", func() error {
		_, err := r.api.call(ctx, "POST", "/v1/quotes", r.patient, map[string]any{
			"treatment_id": treatmentID, "dose_cells": dose, "currency": "jpy",
			"patient": map[string]string{"name": "Load Patient", "email": fmt.Sprintf("load-%s-%d@example.com", r.runID, n),
				"country": "KR", "language": "ko"},
			"screening": map[string]*bool{"diagnosis_confirmed": &yes, "severe_organ_disease": &no, "can_travel": &yes},
		}, nil, &q)
		if err == nil && (q.Deposit == nil || q.Balance == nil) {
			err = fmt.Errorf("quote %s is not bookable", q.ID)
		}
		return err
	}); err != nil {
		return err
	}
	var b struct {
		ID      string `json:"id"`
		Deposit struct {
			PaymentIntentID string `json:"payment_intent_id"`
		} `json:"deposit"`
	}
	if err := r.timed("booking", func() error {
		_, err := r.api.call(ctx, "POST", "/v1/bookings", r.patient, map[string]string{"quote_id": q.ID},
			map[string]string{"Idempotency-Key": fmt.Sprintf("load-%s-%d", r.runID, n)}, &b)
		return err
	}); err != nil {
		return err
	}

	// The deposit: Stripe's signed webhook, then the platform's own events.
	confirmed := r.events.expect(b.ID, "booking.confirmed")
	notice := r.events.expect(b.ID, "clinic.confirmed")
	sent := time.Now()
	if err := r.timed("deposit webhook", func() error {
		return r.paid(ctx, b.ID, "deposit", b.Deposit.PaymentIntentID, q.Deposit.Amount)
	}); err != nil {
		return err
	}
	for step, ch := range map[string]<-chan heard{"deposit webhook → confirmed": confirmed, "deposit webhook → clinic notice": notice} {
		select {
		case h := <-ch:
			r.took(step, h.at.Sub(sent))
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", step, ctx.Err())
		}
	}

	// The clinic's reports.
	clinic := func(what string, body any) error {
		_, err := r.api.call(ctx, "POST", "/v1/clinic/bookings/"+b.ID+"/"+what, r.staff, body, nil, nil)
		return err
	}
	if err := r.timed("harvest", func() error { return clinic("harvest", nil) }); err != nil {
		return err
	}
	qcDone := time.Now()
	if err := r.timed("cells ready", func() error {
		return clinic("cells-ready", map[string]any{"cell_count": 112_000_000, "viability_pct": 94.5, "sterility": "pass", "endotoxin": "pass"})
	}); err != nil {
		return err
	}
	// Payment announces the balance charge it sent to Stripe, with the
	// intent that Stripe's webhook (this saga) then reports on.
	requested := r.events.expect(b.ID, "payment.requested")
	var balanceIntent string
	select {
	case h := <-requested:
		balanceIntent = h.intentID
		r.took("cells ready → balance charged", h.at.Sub(qcDone))
	case <-ctx.Done():
		return fmt.Errorf("the balance charge: %w", ctx.Err())
	}
	ready := r.events.expect(b.ID, "booking.ready_for_administration")
	sent = time.Now()
	if err := r.paid(ctx, b.ID, "balance", balanceIntent, q.Balance.Amount); err != nil {
		return err
	}
	select {
	case h := <-ready:
		r.took("balance webhook → ready", h.at.Sub(sent))
	case <-ctx.Done():
		return fmt.Errorf("ready for administration: %w", ctx.Err())
	}
	if err := r.timed("administered", func() error { return clinic("administered", nil) }); err != nil {
		return err
	}
	r.took("whole saga", time.Since(start))
	r.events.forget(b.ID)
	return nil
}

// paid is Stripe's signed payment_intent.succeeded for the intent.
func (r *sagaRunner) paid(ctx context.Context, bookingID, stage, intentID string, amount int64) error {
	payload, _ := json.Marshal(map[string]any{"id": "evt_" + bookingID + "_" + stage, "object": "event", "api_version": "2023-10-16",
		"created": time.Now().Unix(), "type": "payment_intent.succeeded", "pending_webhooks": 1,
		"data": map[string]any{"object": map[string]any{"id": intentID, "object": "payment_intent", "amount": amount,
			"amount_received": amount, "currency": "jpy", "status": "succeeded", "payment_method": "pm_card_visa",
			"latest_charge": "ch_" + strings.ReplaceAll(bookingID, "-", "") + "_" + stage,
			"metadata":      map[string]string{"booking_id": bookingID}}}})
	signed := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: r.secret, Timestamp: time.Now()})
	_, err := r.api.call(ctx, "POST", "/v1/webhooks/stripe", "", payload, map[string]string{"Stripe-Signature": signed.Header}, nil)
	return err
}
