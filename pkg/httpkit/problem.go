// Package httpkit holds the HTTP conventions every service shares: RFC 9457
// problem+json errors that name the offending field, strict JSON decoding,
// go-kit server options, traced clients, and a server that shuts down
// gracefully.
package httpkit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/saisei-health/platform/pkg/outage"
	"github.com/saisei-health/platform/pkg/validation"
)

// ProblemBase prefixes every problem type; the rest of the URI is a stable
// slug per cause that clients may switch on.
const ProblemBase = "https://saisei.health/problems/"

// Problem is an RFC 9457 problem detail and also an error.
type Problem struct {
	Type     string                  `json:"type"`
	Title    string                  `json:"title"`
	Status   int                     `json:"status"`
	Detail   string                  `json:"detail,omitempty"`
	Instance string                  `json:"instance,omitempty"`
	Errors   []validation.FieldError `json:"errors,omitempty"`
}

func (p *Problem) Error() string {
	if p.Detail != "" {
		return fmt.Sprintf("%d %s: %s", p.Status, p.Title, p.Detail)
	}
	return fmt.Sprintf("%d %s", p.Status, p.Title)
}

// Slug is the stable last part of the problem's type URI.
func (p *Problem) Slug() string { return strings.TrimPrefix(p.Type, ProblemBase) }

// ProblemType is one cause a client can switch on: its slug, the status it
// answers with and a title. Every type is declared once with DefineProblem,
// so the list of everything the platform can answer (ProblemTypes) is
// complete and a test holds the API documentation to it.
type ProblemType struct {
	Status int
	Slug   string
	Title  string
}

var (
	registryMu sync.Mutex
	registry   []ProblemType
)

// DefineProblem declares a problem type. Call it in a package-level var, so
// the type is registered as soon as its package is linked in.
func DefineProblem(status int, slug, title string) ProblemType {
	t := ProblemType{Status: status, Slug: slug, Title: title}
	registryMu.Lock()
	defer registryMu.Unlock()
	if !slices.Contains(registry, t) {
		registry = append(registry, t)
	}
	return t
}

// ProblemTypes lists every type declared by the packages linked into this
// binary, by slug then status.
func ProblemTypes() []ProblemType {
	registryMu.Lock()
	defer registryMu.Unlock()
	out := slices.Clone(registry)
	slices.SortFunc(out, func(a, b ProblemType) int {
		if c := strings.Compare(a.Slug, b.Slug); c != 0 {
			return c
		}
		return a.Status - b.Status
	})
	return out
}

// New is a problem of this type with a detail for this occurrence.
func (t ProblemType) New(detail string) *Problem {
	return &Problem{Type: ProblemBase + t.Slug, Title: t.Title, Status: t.Status, Detail: detail}
}

// The problem types httpkit itself answers with.
var (
	ProblemValidation           = DefineProblem(http.StatusUnprocessableEntity, "validation", "Request has invalid fields")
	ProblemMalformed            = DefineProblem(http.StatusBadRequest, "malformed-request", "Request body is malformed")
	ProblemUnsupportedMediaType = DefineProblem(http.StatusUnsupportedMediaType, "unsupported-media-type", "Unsupported media type")
	ProblemPayloadTooLarge      = DefineProblem(http.StatusRequestEntityTooLarge, "payload-too-large", "Request body too large")
	ProblemMethodNotAllowed     = DefineProblem(http.StatusMethodNotAllowed, "method-not-allowed", "Method not allowed")
	ProblemNoRoute              = DefineProblem(http.StatusNotFound, "no-route", "No such endpoint")
	ProblemInternal             = DefineProblem(http.StatusInternalServerError, "internal", "Internal error")
	// ProblemUpstream stands for an upstream's error answer that was not
	// problem+json; it keeps the upstream's status.
	ProblemUpstream = DefineProblem(http.StatusBadGateway, "upstream", "Upstream error")
	// ProblemDependencyUnavailable means something the request needs (a
	// database, NATS, another service) did not answer: nothing was done,
	// and the same request may be retried after Retry-After.
	ProblemDependencyUnavailable = DefineProblem(http.StatusServiceUnavailable, "dependency-unavailable", "Try again shortly")
)

// Invalid is a 422 naming the fields whose values are not acceptable.
func Invalid(errs ...validation.FieldError) *Problem {
	p := ProblemValidation.New(validation.Errors(errs).Error())
	p.Errors = errs
	return p
}

// Malformed is a 400 for a body that is not the JSON the endpoint takes.
func Malformed(field, message string) *Problem {
	p := ProblemMalformed.New(field + ": " + message)
	if field != "" {
		p.Errors = []validation.FieldError{{Field: field, Message: message}}
	}
	return p
}

// ProblemRule answers errors matching Err (errors.Is) with Type; a rule
// with Convert instead builds the problem itself when it recognizes the
// error (FromJSONError does for JSON a service decoded on its own).
type ProblemRule struct {
	Err     error
	Type    ProblemType
	Convert func(error) *Problem
}

// ProblemTable is how a service maps its errors to problem types: a table,
// read top to bottom, the first matching rule wins. The error's message is
// the detail, and any validation.FieldError it carries is listed in errors.
type ProblemTable []ProblemRule

// Problem answers err by the table, or nil when no rule matches.
func (t ProblemTable) Problem(err error) *Problem {
	for _, r := range t {
		if r.Convert != nil {
			if p := r.Convert(err); p != nil {
				return p
			}
			continue
		}
		if errors.Is(err, r.Err) {
			p := r.Type.New(err.Error())
			p.Errors = validation.Fields(err)
			return p
		}
	}
	return nil
}

// WriteProblem writes p as application/problem+json.
func WriteProblem(w http.ResponseWriter, p *Problem) {
	w.Header().Set("Content-Type", "application/problem+json")
	if p.Status == http.StatusServiceUnavailable && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", "2")
	}
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// ErrorEncoder returns a go-kit error encoder. An error that is (or wraps) a
// *Problem is written as it is; then the service's table decides; an error
// that names fields is a 422; a dependency that is down (outage.Is) is a
// 503 dependency-unavailable with Retry-After; anything else is a logged
// 500 that leaks no detail.
func ErrorEncoder(log *slog.Logger, table ProblemTable) func(context.Context, error, http.ResponseWriter) {
	return func(ctx context.Context, err error, w http.ResponseWriter) {
		var p *Problem
		if !errors.As(err, &p) {
			p = table.Problem(err)
		}
		if p == nil {
			if fields := validation.Fields(err); len(fields) > 0 {
				p = Invalid(fields...)
			}
		}
		if p == nil && outage.Is(err) {
			// A dependency is down: nothing was done that a retry cannot
			// repeat. Logged as a warning: it is not a defect.
			log.WarnContext(ctx, "dependency unavailable", "err", err)
			p = ProblemDependencyUnavailable.New("a service this request needs did not answer; retry with the same Idempotency-Key")
		}
		if p == nil {
			log.ErrorContext(ctx, "unhandled error", "err", err)
			p = ProblemInternal.New("")
		}
		WriteProblem(w, p)
	}
}
