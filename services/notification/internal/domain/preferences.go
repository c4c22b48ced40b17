package domain

import (
	"slices"

	"github.com/saisei-health/platform/pkg/validation"
)

// OptionalTemplates are the emails a patient may decline. Every other email
// is about money the patient paid or owes, or about cells that will not be
// given, and is always sent.
var OptionalTemplates = []string{TemplateQuoteIssued, TemplateAdministered}

// Preferences are a patient's own settings for the emails we send.
type Preferences struct {
	// Language, when set, overrides the language given on each quote.
	Language string
	// Declined lists the optional templates the patient does not want.
	Declined []string
}

// Wants reports whether the patient is to receive template.
func (p Preferences) Wants(template string) bool {
	return !slices.Contains(OptionalTemplates, template) || !slices.Contains(p.Declined, template)
}

// LanguageFor is the language to write in: the patient's setting, else the
// language the quote gave.
func (p Preferences) LanguageFor(given string) string {
	if p.Language != "" {
		return p.Language
	}
	return given
}

// Validate names each field that cannot be stored.
func (p Preferences) Validate() []validation.FieldError {
	var errs []validation.FieldError
	if p.Language != "" && !slices.Contains(Languages, p.Language) {
		errs = append(errs, validation.FieldError{Field: "language", Message: "must be one of en, ko, ja, zh"})
	}
	for _, t := range p.Declined {
		if !slices.Contains(OptionalTemplates, t) {
			errs = append(errs, validation.FieldError{Field: "emails." + t, Message: "is not an optional email"})
		}
	}
	return errs
}
