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
	"strings"
)

// ProblemBase prefixes every problem type; the rest of the URI is a stable
// slug per cause that clients may switch on.
const ProblemBase = "https://saisei.health/problems/"

// FieldError names one invalid field of a request.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Problem is an RFC 9457 problem detail and also an error.
type Problem struct {
	Type     string       `json:"type"`
	Title    string       `json:"title"`
	Status   int          `json:"status"`
	Detail   string       `json:"detail,omitempty"`
	Instance string       `json:"instance,omitempty"`
	Errors   []FieldError `json:"errors,omitempty"`
}

func (p *Problem) Error() string {
	if p.Detail != "" {
		return fmt.Sprintf("%d %s: %s", p.Status, p.Title, p.Detail)
	}
	return fmt.Sprintf("%d %s", p.Status, p.Title)
}

// NewProblem builds a problem of the given slug.
func NewProblem(status int, slug, title, detail string) *Problem {
	return &Problem{Type: ProblemBase + slug, Title: title, Status: status, Detail: detail}
}

// Invalid is a 422 naming the fields whose values are not acceptable.
func Invalid(errs ...FieldError) *Problem {
	p := NewProblem(http.StatusUnprocessableEntity, "validation", "Request has invalid fields", describe(errs))
	p.Errors = errs
	return p
}

// Malformed is a 400 for a body that is not the JSON the endpoint takes.
func Malformed(field, message string) *Problem {
	p := NewProblem(http.StatusBadRequest, "malformed-request", "Request body is malformed", field+": "+message)
	if field != "" {
		p.Errors = []FieldError{{Field: field, Message: message}}
	}
	return p
}

// Conflict is a 409 with a cause-specific slug.
func Conflict(slug, title, detail string) *Problem {
	return NewProblem(http.StatusConflict, slug, title, detail)
}

func describe(errs []FieldError) string {
	parts := make([]string, len(errs))
	for i, e := range errs {
		parts[i] = e.Field + ": " + e.Message
	}
	return strings.Join(parts, "; ")
}

// Validator collects field errors.
type Validator struct{ errs []FieldError }

// Check records message against field when ok is false.
func (v *Validator) Check(ok bool, field, message string) {
	if !ok {
		v.errs = append(v.errs, FieldError{Field: field, Message: message})
	}
}

// Err is nil when every check passed, otherwise a 422 Problem.
func (v *Validator) Err() error {
	if len(v.errs) == 0 {
		return nil
	}
	return Invalid(v.errs...)
}

// WriteProblem writes p as application/problem+json.
func WriteProblem(w http.ResponseWriter, p *Problem) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// ErrorEncoder returns a go-kit error encoder. Errors that are (or wrap) a
// *Problem are written as they are; mapErr may translate a service's domain
// errors into Problems; anything else is a logged 500 that leaks no detail.
func ErrorEncoder(log *slog.Logger, mapErr func(error) *Problem) func(context.Context, error, http.ResponseWriter) {
	return func(ctx context.Context, err error, w http.ResponseWriter) {
		var p *Problem
		if !errors.As(err, &p) && mapErr != nil {
			p = mapErr(err)
		}
		if p == nil {
			log.ErrorContext(ctx, "unhandled error", "err", err)
			p = NewProblem(http.StatusInternalServerError, "internal", "Internal error", "")
		}
		WriteProblem(w, p)
	}
}

// Flatten unpacks errors.Join trees, so a validation that found several bad
// fields reports every one of them.
func Flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, Flatten(e)...)
		}
		return out
	}
	return []error{err}
}
