package domain

import (
	crand "crypto/rand"
	"encoding/base64"
	"fmt"
	"html"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/saisei-health/platform/pkg/validation"
)

// WebhookEventTypes are the events a clinic's endpoint may subscribe to:
// the notices its NATS subjects carry, named as the webhook body's "type".
var WebhookEventTypes = []string{"booking.confirmed", "booking.ready_for_administration", "booking.administered",
	"booking.cancelled", "booking.expired", "booking.reculture"}

// WebhookSchedule is when a delivery is attempted, counted from the
// previous attempt: at once, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and
// 10 h — Svix's schedule, the Standard Webhooks authors', which spans more
// than a day so a clinic's overnight outage loses nothing.
var WebhookSchedule = []time.Duration{0, 5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour,
	5 * time.Hour, 10 * time.Hour, 10 * time.Hour}

// Webhook limits.
const (
	// WebhookTimeout is how long an endpoint has to answer.
	WebhookTimeout = 15 * time.Second
	// SecretOverlap is how long the previous secret still signs after a
	// rotation, so a clinic can deploy the new one without rejecting ours.
	SecretOverlap = 24 * time.Hour
	// DisableAfterFailing disables an endpoint that has failed every
	// delivery for this long.
	DisableAfterFailing = 5 * 24 * time.Hour
	// MaxEndpointsPerClinic bounds what one clinic can register.
	MaxEndpointsPerClinic = 10
	// ResponseExcerpt bounds what is kept of an endpoint's answer.
	ResponseExcerpt = 1024
)

// RetryAfter is the wait before attempt number next (1-based; attempt 1 is
// the first try) and whether there is such an attempt. A jitter of up to a
// tenth of the wait spreads retries that failed together.
func RetryAfter(next int) (time.Duration, bool) {
	if next < 1 || next > len(WebhookSchedule) {
		return 0, false
	}
	d := WebhookSchedule[next-1]
	if d > 0 {
		d += rand.N(d/10 + 1)
	}
	return d, true
}

// NewWebhookSecret is a fresh signing secret in the Standard Webhooks form:
// whsec_ and 32 random bytes in base64.
func NewWebhookSecret() string {
	key := make([]byte, 32)
	_, _ = crand.Read(key) // never fails (Go 1.24+)
	return "whsec_" + base64.StdEncoding.EncodeToString(key)
}

// ValidateWebhookEvents names an empty, unknown or repeated event type.
func ValidateWebhookEvents(events []string) []validation.FieldError {
	if len(events) == 0 {
		return []validation.FieldError{{Field: "events", Message: "must name at least one of " + joinEvents()}}
	}
	if len(events) > len(WebhookEventTypes) {
		// Checked first: the checks below are quadratic in the list.
		return []validation.FieldError{{Field: "events", Message: fmt.Sprintf("must name at most %d events", len(WebhookEventTypes))}}
	}
	var errs []validation.FieldError
	for i, e := range events {
		switch {
		case !slices.Contains(WebhookEventTypes, e):
			errs = append(errs, validation.FieldError{Field: "events", Message: "unknown event " + quoteShort(e) + "; one of " + joinEvents()})
		case slices.Index(events, e) != i:
			errs = append(errs, validation.FieldError{Field: "events", Message: "names " + e + " twice"})
		}
	}
	return errs
}

func joinEvents() string { return strings.Join(WebhookEventTypes, ", ") }

func quoteShort(s string) string {
	if len(s) > 64 {
		s = s[:64]
	}
	return `"` + s + `"`
}

// TemplateEndpointDisabled tells a clinic its endpoint was disabled.
const TemplateEndpointDisabled = "webhook_endpoint_disabled"

// EndpointDisabledEmail tells the contact a clinic gave for an endpoint
// that it was disabled after failing since failingSince, in Japanese (the
// clinics' language) and English (their developers' often), in one email.
// Its id is the endpoint and the failure's start, so one outage tells once.
func EndpointDisabledEmail(endpointID, url, contact string, failingSince time.Time) Email {
	paragraphs := []string{
		`Webhookエンドポイントを停止しました / Your webhook endpoint was disabled`,
		`エンドポイント ` + url + ` への配信が ` + formatDate("ja", failingSince) + ` からすべて失敗したため、配信を停止しました。` +
			`未配信のイベントは保持されています。エンドポイントを修正のうえ、PATCH /v1/clinic/webhook-endpoints/` + endpointID +
			` に {"enabled": true} を送ると配信を再開します。各試行の結果は GET /v1/clinic/webhook-endpoints/` + endpointID +
			`/deliveries で確認できます。`,
		`Every delivery to ` + url + ` has failed since ` + formatDate("en", failingSince) + `, so we stopped sending to it. ` +
			`The undelivered events are kept. Once the endpoint is fixed, send {"enabled": true} to PATCH /v1/clinic/webhook-endpoints/` +
			endpointID + ` and deliveries resume. Each attempt's answer is in GET /v1/clinic/webhook-endpoints/` + endpointID + `/deliveries.`,
		`Saisei Care`,
	}
	subject := `【Saisei】Webhookエンドポイントを停止しました / Webhook endpoint disabled`
	var markup []string
	for _, p := range paragraphs {
		markup = append(markup, htmlParagraph(p))
	}
	return Email{
		ID: "endpoint:" + endpointID + ":disabled:" + failingSince.UTC().Format("20060102T150405"), EndpointID: endpointID,
		Template: TemplateEndpointDisabled, Language: "ja", To: contact, Subject: subject, Body: strings.Join(paragraphs, "\n\n"),
		HTML: `<!DOCTYPE html><html lang="ja"><head><meta charset="utf-8"><title>` + html.EscapeString(subject) +
			`</title></head><body>` + strings.Join(markup, "\n") + `</body></html>`,
	}
}
