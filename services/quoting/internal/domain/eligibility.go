package domain

import (
	"fmt"
	"time"

	"github.com/saisei-health/platform/pkg/validation"
)

// Eligibility outcomes.
const (
	Eligible    = "eligible"
	NeedsReview = "needs_review"
	Ineligible  = "ineligible"
)

// Rules are a treatment's screening criteria (from the catalog).
type Rules struct {
	RequiresConfirmedDiagnosis bool
	MinCancerFreeYears         int
	// OrganDisease is "review" (a clinician decides) or "exclude".
	OrganDisease        string
	ExcludesSeveredCord bool
	// InjuryWindow, when set, bounds the time since a spinal cord injury
	// the protocol treats (Stemirac's approval: 31 days to 6 months).
	InjuryWindow *InjuryWindow
}

// InjuryWindow bounds the time since injury: from MinDays days to
// MaxMonths calendar months after the injury date, both inclusive.
type InjuryWindow struct {
	MinDays   int `json:"min_days"`
	MaxMonths int `json:"max_months"`
}

// Screening is the patient's questionnaire. Pointers are nil when not
// answered; CancerFreeYears is nil when the patient never had cancer.
type Screening struct {
	DiagnosisConfirmed *bool
	CancerFreeYears    *int
	SevereOrganDisease *bool
	// InjuryDate is the Japanese calendar date of a spinal cord injury.
	InjuryDate  *time.Time
	CordSevered *bool
	CanTravel   *bool
}

// Reason explains an eligibility outcome.
type Reason struct {
	Code    string `json:"code"`
	Outcome string `json:"outcome"`
	Message string `json:"message"`
}

// Eligibility is the result of screening.
type Eligibility struct {
	Status  string   `json:"status"`
	Reasons []Reason `json:"reasons"`
}

// Validate checks the questionnaire is complete enough for t; answers that
// are missing are named as fields.
func (s Screening) Validate(t Treatment, today time.Time) []validation.FieldError {
	var errs []validation.FieldError
	need := func(ok bool, field string) {
		if !ok {
			errs = append(errs, validation.FieldError{Field: "screening." + field, Message: "is required"})
		}
	}
	need(s.DiagnosisConfirmed != nil, "diagnosis_confirmed")
	need(s.SevereOrganDisease != nil, "severe_organ_disease")
	need(s.CanTravel != nil, "can_travel")
	if s.CancerFreeYears != nil && (*s.CancerFreeYears < 0 || *s.CancerFreeYears > 120) {
		errs = append(errs, validation.FieldError{Field: "screening.cancer_free_years", Message: "must be 0 to 120, or null if never diagnosed with cancer"})
	}
	if t.IsFor("spinal_cord_injury") {
		need(s.InjuryDate != nil, "injury_date")
		need(s.CordSevered != nil, "cord_severed")
	}
	if s.InjuryDate != nil && s.InjuryDate.After(today) {
		errs = append(errs, validation.FieldError{Field: "screening.injury_date", Message: "must not be in the future"})
	}
	return errs
}

// Phase of a spinal cord injury by days since it: acute 0–14 days,
// subacute 15 days – 6 months, chronic after that.
func Phase(injury, today time.Time) string {
	switch {
	case !today.After(injury.AddDate(0, 0, 14)):
		return "acute"
	case !today.After(injury.AddDate(0, 6, 0)):
		return "subacute"
	}
	return "chronic"
}

// Screen applies t's rules to a questionnaire answered on today (a Japanese
// calendar date). No questionnaire means a clinician must review the
// records first.
func Screen(t Treatment, s *Screening, today time.Time) Eligibility {
	if s == nil {
		return Eligibility{Status: NeedsReview, Reasons: []Reason{{"screening_missing", NeedsReview,
			"No screening answers: a clinician reviews the medical records before the quote can be booked."}}}
	}
	var reasons []Reason
	add := func(code, outcome, msg string) { reasons = append(reasons, Reason{code, outcome, msg}) }
	r := t.Eligibility
	if s.CanTravel != nil && !*s.CanTravel {
		add("cannot_travel", Ineligible, "The patient must be stable enough to travel to Japan and lie flat for the procedure.")
	}
	if s.CancerFreeYears != nil && *s.CancerFreeYears < r.MinCancerFreeYears {
		add("recent_cancer", Ineligible, fmt.Sprintf("Cancer %d year(s) ago; this treatment requires %d years cancer-free.",
			*s.CancerFreeYears, r.MinCancerFreeYears))
	}
	if s.DiagnosisConfirmed != nil && !*s.DiagnosisConfirmed && r.RequiresConfirmedDiagnosis {
		add("diagnosis_unconfirmed", NeedsReview, "The diagnosis is not confirmed: a clinician confirms it from the records.")
	}
	if s.SevereOrganDisease != nil && *s.SevereOrganDisease {
		if r.OrganDisease == "exclude" {
			add("severe_organ_disease", Ineligible, "Severe heart, kidney or lung disease excludes this treatment.")
		} else {
			add("severe_organ_disease", NeedsReview, "Severe heart, kidney or lung disease: a clinician decides whether treatment is safe.")
		}
	}
	if t.IsFor("spinal_cord_injury") {
		if s.CordSevered != nil && *s.CordSevered && r.ExcludesSeveredCord {
			add("cord_severed", Ineligible, "An anatomically severed spinal cord is excluded; contusions respond best.")
		}
		if s.InjuryDate != nil {
			days := int(today.Sub(*s.InjuryDate).Hours() / 24)
			phase := Phase(*s.InjuryDate, today)
			if w := r.InjuryWindow; w != nil {
				last := s.InjuryDate.AddDate(0, w.MaxMonths, 0)
				switch {
				case days < w.MinDays:
					add("injury_too_recent", Ineligible, fmt.Sprintf("Injury %d days ago; this protocol treats from day %d to %d months after injury.", days, w.MinDays, w.MaxMonths))
				case today.After(last):
					add("injury_too_old", Ineligible, fmt.Sprintf("Injury %d days ago (%s); this protocol treats only until %d months after injury, %s.",
						days, phase, w.MaxMonths, last.Format(time.DateOnly)))
				}
			} else if phase == "acute" {
				add("acute_injury", NeedsReview, fmt.Sprintf("Injury %d days ago (acute phase): a clinician decides when travel and treatment are safe.", days))
			}
		}
	}
	status := Eligible
	for _, r := range reasons {
		if r.Outcome == Ineligible {
			status = Ineligible
			break
		}
		status = NeedsReview
	}
	if reasons == nil {
		reasons = []Reason{}
	}
	return Eligibility{Status: status, Reasons: reasons}
}
