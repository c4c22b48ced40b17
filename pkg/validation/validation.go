// Package validation is how every layer says which field of a request is
// wrong. Domains return FieldErrors (it has no dependencies, so pure domain
// packages can use it); the HTTP layer turns them into a 422 problem naming
// each field, without any service mapping them itself.
package validation

import (
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"
)

// FieldError names one invalid field (or header, or query parameter) and
// says what is wrong with it.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

func (e FieldError) Error() string { return e.Field + ": " + e.Message }

// Errors is several field errors reported together, so a client fixes every
// field in one round trip.
type Errors []FieldError

// Unwrap lets errors.As find each FieldError.
func (e Errors) Unwrap() []error {
	out := make([]error, len(e))
	for i, f := range e {
		out[i] = f
	}
	return out
}

func (e Errors) Error() string {
	parts := make([]string, len(e))
	for i, f := range e {
		parts[i] = f.Error()
	}
	return strings.Join(parts, "; ")
}

// Fields collects every FieldError in err: err itself, Errors, errors.Join
// trees and wrapped errors. It returns nil when err names no field.
func Fields(err error) []FieldError {
	var out []FieldError
	var walk func(error)
	walk = func(err error) {
		switch e := err.(type) {
		case nil:
		case FieldError:
			out = append(out, e)
		case Errors:
			out = append(out, e...)
		case interface{ Unwrap() []error }:
			for _, inner := range e.Unwrap() {
				walk(inner)
			}
		default:
			walk(errors.Unwrap(err))
		}
	}
	walk(err)
	return out
}

// Validator collects field errors.
type Validator struct{ errs Errors }

// Check records message against field when ok is false.
func (v *Validator) Check(ok bool, field, message string) {
	if !ok {
		v.errs = append(v.errs, FieldError{Field: field, Message: message})
	}
}

// Add records errors already built.
func (v *Validator) Add(errs ...FieldError) { v.errs = append(v.errs, errs...) }

// Err is nil when every check passed, otherwise the Errors in the order
// they were found.
func (v *Validator) Err() error {
	if len(v.errs) == 0 {
		return nil
	}
	return v.errs
}

// Text checks a free-text value: valid UTF-8, at most max characters, and
// no control characters (a line break or tab only where multiline). Names,
// emails and notes end up in emails, PDFs, Stripe and clinics' systems;
// none of them wants a NUL or a megabyte.
func (v *Validator) Text(field, s string, max int, multiline bool) {
	switch {
	case !utf8.ValidString(s):
		v.Check(false, field, "must be valid UTF-8 text")
	case utf8.RuneCountInString(s) > max:
		v.Check(false, field, fmt.Sprintf("must be at most %d characters", max))
	case strings.ContainsFunc(s, func(r rune) bool {
		return unicode.IsControl(r) && !(multiline && (r == '\n' || r == '\r' || r == '\t'))
	}):
		v.Check(false, field, "must not contain control characters")
	}
}

// MaxEmailLength is RFC 5321's limit on a forward path.
const MaxEmailLength = 254

// Email checks an email address: a bare address like name@example.com (no
// display name, no angle brackets), at most MaxEmailLength characters.
func (v *Validator) Email(field, s string) {
	if len(s) > MaxEmailLength {
		v.Check(false, field, fmt.Sprintf("must be at most %d characters", MaxEmailLength))
	} else if a, err := mail.ParseAddress(s); err != nil || a.Address != s {
		v.Check(false, field, "must be an email address like name@example.com")
	}
}
