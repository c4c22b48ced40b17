package e2e

import "time"

// The JSON of the gateway's API as a client written from docs/api.md sees
// it. These mirror the services' transport views (services/*/internal/
// transport) field by field but are declared here, not imported: a renamed
// member must break this test, not follow silently.

// Money is an amount in minor units of its currency.
type Money struct {
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
}

func yen(amount int64) Money { return Money{Amount: amount, Currency: "JPY"} }

// Problem is an RFC 9457 problem+json answer.
type Problem struct {
	Type     string       `json:"type"`
	Title    string       `json:"title"`
	Status   int          `json:"status"`
	Detail   string       `json:"detail,omitempty"`
	Instance string       `json:"instance,omitempty"`
	Errors   []FieldError `json:"errors,omitempty"`
}

// FieldError names one offending field.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Catalog.

// TreatmentPage is one page of a treatment search.
type TreatmentPage struct {
	Items      []Treatment `json:"items"`
	NextCursor *string     `json:"next_cursor"`
}

// Treatment is a treatment in one language.
type Treatment struct {
	ID               string            `json:"id"`
	Language         string            `json:"language"`
	Name             string            `json:"name"`
	Description      string            `json:"description"`
	Condition        string            `json:"condition"`
	Conditions       []string          `json:"conditions"`
	ConditionNames   map[string]string `json:"condition_names"`
	Clinic           Clinic            `json:"clinic"`
	PlanNumber       string            `json:"plan_number"`
	RiskClass        string            `json:"risk_class"`
	Plan             Plan              `json:"plan"`
	Trial            *Trial            `json:"trial"`
	Bookable         bool              `json:"bookable"`
	CellType         string            `json:"cell_type"`
	CellSource       string            `json:"cell_source"`
	Autologous       bool              `json:"autologous"`
	Routes           []string          `json:"routes"`
	Sessions         int               `json:"sessions"`
	CultureDays      DayRange          `json:"culture_days"`
	Visits           int               `json:"visits"`
	TypicalStayDays  int               `json:"typical_stay_days"`
	FollowUpMonths   []int             `json:"follow_up_months"`
	Included         []string          `json:"included"`
	Prices           Prices            `json:"prices"`
	DoseOptions      []DoseOption      `json:"dose_options"`
	PriceFrom        *Money            `json:"price_from"`
	DisplayPriceFrom *Money            `json:"display_price_from,omitempty"`
	Eligibility      EligibilityRules  `json:"eligibility"`
	Revision         int64             `json:"revision"`
}

// Clinic is the clinic block of a treatment.
type Clinic struct {
	ID            string        `json:"id"`
	Name          string        `json:"name"`
	Kind          string        `json:"kind"`
	City          string        `json:"city"`
	Languages     []string      `json:"languages"`
	DepositPolicy DepositPolicy `json:"deposit_policy"`
	Extras        []Extra       `json:"extras"`
}

// DepositPolicy says which stages the deposit pays for.
type DepositPolicy struct {
	Covers             []string `json:"covers"`
	FullWithoutCulture bool     `json:"full_without_culture"`
}

// Extra is an optional service and its price per unit, before tax.
type Extra struct {
	Code    string `json:"code"`
	Price   Money  `json:"price"`
	Unit    string `json:"unit"`
	Taxable bool   `json:"taxable"`
}

// Plan is a treatment's provision plan.
type Plan struct {
	Number     string `json:"number"`
	RiskClass  string `json:"risk_class"`
	Status     string `json:"status"`
	Therapy    string `json:"therapy"`
	Committee  string `json:"committee"`
	ValidFrom  string `json:"valid_from"`
	ValidUntil string `json:"valid_until"`
	CPC        CPC    `json:"cpc"`
}

// CPC is the cell processing center a plan names.
type CPC struct {
	Name    string `json:"name"`
	InHouse bool   `json:"in_house"`
}

// Trial marks a clinical trial: listed, never bookable.
type Trial struct {
	Institution  string `json:"institution"`
	Status       string `json:"status"`
	Phase        string `json:"phase"`
	RegistryID   string `json:"registry_id"`
	Participants int    `json:"participants"`
}

// DayRange is a min–max number of days.
type DayRange struct {
	Min int `json:"min"`
	Max int `json:"max"`
}

// Prices are a treatment's fees, before tax.
type Prices struct {
	Consultation             Money `json:"consultation"`
	Harvest                  Money `json:"harvest"`
	QualityTesting           Money `json:"quality_testing"`
	AdministrationPerSession Money `json:"administration_per_session"`
}

// DoseOption is one dose; Price is the whole protocol at that dose.
type DoseOption struct {
	Cells   int64 `json:"cells"`
	Culture Money `json:"culture"`
	Price   Money `json:"price"`
}

// EligibilityRules are a treatment's screening rules.
type EligibilityRules struct {
	RequiresConfirmedDiagnosis bool          `json:"requires_confirmed_diagnosis"`
	MinCancerFreeYears         int           `json:"min_cancer_free_years"`
	OrganDisease               string        `json:"organ_disease"`
	ExcludesSeveredCord        bool          `json:"excludes_severed_cord"`
	InjuryWindow               *InjuryWindow `json:"injury_window"`
}

// InjuryWindow bounds the time since a spinal cord injury.
type InjuryWindow struct {
	MinDays   int `json:"min_days"`
	MaxMonths int `json:"max_months"`
}

// PriceComparison is a condition's price range by country.
type PriceComparison struct {
	Condition ConditionName  `json:"condition"`
	Currency  string         `json:"currency"`
	Source    string         `json:"source"`
	Countries []CountryRange `json:"countries"`
}

// ConditionName is a condition code and its name in the asked language.
type ConditionName struct {
	Code string `json:"code"`
	Name string `json:"name"`
}

// CountryRange is one country's prices.
type CountryRange struct {
	Country    string `json:"country"`
	Min        Money  `json:"min"`
	Max        Money  `json:"max"`
	OpenEnded  bool   `json:"open_ended"`
	Regulation string `json:"regulation"`
}

// The catalog's administration documents: what operators write, and what
// the clinic and plan endpoints answer (treatments answer as Treatment).

// ClinicDocument is a clinic as operators write it.
type ClinicDocument struct {
	ID               string            `json:"id"`
	Names            map[string]string `json:"names"`
	Kind             string            `json:"kind"`
	City             string            `json:"city"`
	MHLWRegistration string            `json:"mhlw_registration"`
	Languages        []string          `json:"languages"`
	DepositPolicy    DepositPolicy     `json:"deposit_policy"`
	Extras           []ExtraDocument   `json:"extras"`
}

// ExtraDocument prices an extra in whole yen, before tax.
type ExtraDocument struct {
	Code    string `json:"code"`
	Price   int64  `json:"price"`
	Unit    string `json:"unit"`
	Taxable bool   `json:"taxable"`
}

// PlanDocument is a provision plan as operators write it.
type PlanDocument struct {
	Number     string `json:"number"`
	ClinicID   string `json:"clinic_id"`
	RiskClass  string `json:"risk_class"`
	Therapy    string `json:"therapy"`
	Committee  string `json:"committee"`
	CPC        CPC    `json:"cpc"`
	ValidFrom  string `json:"valid_from"`
	ValidUntil string `json:"valid_until"`
	Status     string `json:"status"`
}

// TreatmentDocument is a treatment as operators write it; prices in whole
// yen, before tax.
type TreatmentDocument struct {
	ID              string            `json:"id"`
	ClinicID        string            `json:"clinic_id"`
	PlanNumber      string            `json:"plan_number"`
	Names           map[string]string `json:"names"`
	Descriptions    map[string]string `json:"descriptions"`
	Conditions      []string          `json:"conditions"`
	CellType        string            `json:"cell_type"`
	CellSource      string            `json:"cell_source"`
	Autologous      bool              `json:"autologous"`
	Routes          []string          `json:"routes"`
	Sessions        int               `json:"sessions"`
	CultureDays     DayRange          `json:"culture_days"`
	Visits          int               `json:"visits"`
	TypicalStayDays int               `json:"typical_stay_days"`
	FollowUpMonths  []int             `json:"follow_up_months"`
	Included        []string          `json:"included"`
	Prices          PricesDocument    `json:"prices"`
	DoseOptions     []DoseDocument    `json:"dose_options"`
	Eligibility     EligibilityRules  `json:"eligibility"`
	Trial           *Trial            `json:"trial"`
}

// PricesDocument are a treatment's fees in whole yen.
type PricesDocument struct {
	Consultation             int64 `json:"consultation"`
	Harvest                  int64 `json:"harvest"`
	QualityTesting           int64 `json:"quality_testing"`
	AdministrationPerSession int64 `json:"administration_per_session"`
}

// DoseDocument is a dose and its culture fee in whole yen.
type DoseDocument struct {
	Cells   int64 `json:"cells"`
	Culture int64 `json:"culture"`
}

// Quotes.

// QuoteRequest asks for a quote. A screening left out (nil) makes the
// quote need a clinician's review.
type QuoteRequest struct {
	TreatmentID string         `json:"treatment_id"`
	DoseCells   int64          `json:"dose_cells"`
	Currency    string         `json:"currency"`
	Patient     Patient        `json:"patient"`
	Extras      []ExtraRequest `json:"extras,omitempty"`
	Screening   *Screening     `json:"screening,omitempty"`
}

// Patient is who the quote and the booking are for.
type Patient struct {
	Name     string `json:"name"`
	Email    string `json:"email"`
	Country  string `json:"country"`
	Language string `json:"language"`
}

// ExtraRequest is an extra counted in its unit.
type ExtraRequest struct {
	Code   string `json:"code"`
	Nights *int   `json:"nights,omitempty"`
	Days   *int   `json:"days,omitempty"`
	Trips  *int   `json:"trips,omitempty"`
	Years  *int   `json:"years,omitempty"`
}

// Screening is the patient's questionnaire; nil is "not answered".
type Screening struct {
	DiagnosisConfirmed *bool   `json:"diagnosis_confirmed,omitempty"`
	CancerFreeYears    *int    `json:"cancer_free_years,omitempty"`
	SevereOrganDisease *bool   `json:"severe_organ_disease,omitempty"`
	InjuryDate         *string `json:"injury_date,omitempty"`
	CordSevered        *bool   `json:"cord_severed,omitempty"`
	CanTravel          *bool   `json:"can_travel,omitempty"`
}

// RevisionRequest is a clinic's revision of a quote; every field is
// optional.
type RevisionRequest struct {
	DoseCells   *int64          `json:"dose_cells,omitempty"`
	Extras      *[]ExtraRequest `json:"extras,omitempty"`
	Eligibility *Eligibility    `json:"eligibility,omitempty"`
	Note        string          `json:"note,omitempty"`
}

// Quote is a priced, versioned offer.
type Quote struct {
	ID              string      `json:"id"`
	Version         int         `json:"version"`
	Status          string      `json:"status"`
	Supersedes      string      `json:"supersedes,omitempty"`
	SupersededBy    string      `json:"superseded_by,omitempty"`
	TreatmentID     string      `json:"treatment_id"`
	TreatmentName   string      `json:"treatment_name"`
	ClinicID        string      `json:"clinic_id"`
	ClinicName      string      `json:"clinic_name"`
	DoseCells       int64       `json:"dose_cells"`
	Visits          int         `json:"visits"`
	RequiresHarvest bool        `json:"requires_harvest"`
	Patient         Patient     `json:"patient"`
	Screening       *Screening  `json:"screening"`
	Eligibility     Eligibility `json:"eligibility"`
	Lines           []QuoteLine `json:"lines"`
	Subtotal        Money       `json:"subtotal"`
	Tax             Money       `json:"tax"`
	TaxRatePercent  int         `json:"tax_rate_percent"`
	Total           Money       `json:"total"`
	// Deposit and Balance are null when the quote cannot be booked.
	Deposit           *Money             `json:"deposit"`
	Balance           *Money             `json:"balance"`
	CancellationTerms *CancellationTerms `json:"cancellation_terms"`
	DisplayTotal      Money              `json:"display_total"`
	FX                FX                 `json:"fx"`
	IssuedAt          time.Time          `json:"issued_at"`
	ValidUntil        time.Time          `json:"valid_until"`
	BookingID         string             `json:"booking_id,omitempty"`
	Note              string             `json:"note,omitempty"`
}

// Eligibility is the screening's verdict.
type Eligibility struct {
	Status  string   `json:"status"`
	Reasons []Reason `json:"reasons"`
}

// Reason is one rule's outcome.
type Reason struct {
	Code    string `json:"code"`
	Outcome string `json:"outcome"`
	Message string `json:"message"`
}

// QuoteLine is one priced line; tax is a line of its own.
type QuoteLine struct {
	Code        string `json:"code"`
	Description string `json:"description"`
	Quantity    int    `json:"quantity"`
	UnitPrice   Money  `json:"unit_price"`
	Amount      Money  `json:"amount"`
	Taxable     bool   `json:"taxable"`
	InDeposit   bool   `json:"in_deposit"`
}

// FX is the rate locked into a quote: 1 Base = Rate Quote.
type FX struct {
	Currency string    `json:"currency"`
	Rate     string    `json:"rate"`
	Base     string    `json:"base"`
	Quote    string    `json:"quote"`
	AsOf     time.Time `json:"as_of"`
}

// Bookings.

// BookingRequest books a quote.
type BookingRequest struct {
	QuoteID string `json:"quote_id"`
}

// Booking is booking's own view: what the clinic reports answer.
type Booking struct {
	ID              string         `json:"id"`
	Status          string         `json:"status"`
	QuoteID         string         `json:"quote_id"`
	ClinicID        string         `json:"clinic_id"`
	ClinicName      string         `json:"clinic_name"`
	TreatmentID     string         `json:"treatment_id"`
	TreatmentName   string         `json:"treatment_name"`
	DoseCells       int64          `json:"dose_cells"`
	RequiresHarvest bool           `json:"requires_harvest"`
	Patient         Patient        `json:"patient"`
	Total           Money          `json:"total"`
	DepositDue      Money          `json:"deposit_due"`
	DepositDueAt    time.Time      `json:"deposit_due_at"`
	BalanceDue      Money          `json:"balance_due"`
	BalanceFailure  string         `json:"balance_failure,omitempty"`
	BalancePayBy    *time.Time     `json:"balance_pay_by,omitempty"`
	HarvestedAt     *time.Time     `json:"harvested_at,omitempty"`
	QualityReport   *QualityReport `json:"quality_report,omitempty"`
	AdministeredAt  *time.Time     `json:"administered_at,omitempty"`
	// CancellationTerms are what a cancellation would keep; Cancellation
	// how the booking ended, once cancelled.
	CancellationTerms CancellationTerms `json:"cancellation_terms"`
	Cancellation      *Cancellation     `json:"cancellation,omitempty"`
	History           []Transition      `json:"history,omitempty"`
	CreatedAt         time.Time         `json:"created_at"`
	UpdatedAt         time.Time         `json:"updated_at"`
}

// CancellationTerms are what a cancellation keeps, fixed by the quote.
type CancellationTerms struct {
	PolicyVersion   int   `json:"policy_version"`
	CancellationFee Money `json:"cancellation_fee"`
	ConsultationFee Money `json:"consultation_fee"`
	CultureCost     Money `json:"culture_cost"`
}

// Cancellation is how a booking ended: refunded, kept, and why.
type Cancellation struct {
	Reason      string    `json:"reason"`
	Refund      Money     `json:"refund"`
	Retained    Money     `json:"retained"`
	Explanation string    `json:"explanation"`
	ClinicNote  string    `json:"clinic_note"`
	At          time.Time `json:"at"`
}

// CreatedBooking answers POST /v1/bookings: the booking and its deposit.
type CreatedBooking struct {
	Booking
	Deposit Deposit `json:"deposit"`
}

// BookingWithPayments answers GET /v1/bookings/{id}: the gateway adds
// payment's payments to booking's view.
type BookingWithPayments struct {
	Booking
	Payments []Payment `json:"payments"`
}

// Deposit is what the patient's app needs to pay the deposit.
type Deposit struct {
	PaymentID       string `json:"payment_id"`
	Amount          Money  `json:"amount"`
	PaymentIntentID string `json:"payment_intent_id"`
	ClientSecret    string `json:"client_secret"`
}

// QualityReport is the clinic's QC report on the cultured cells.
type QualityReport struct {
	CellCount    int64     `json:"cell_count"`
	ViabilityPct string    `json:"viability_pct"`
	Sterility    string    `json:"sterility"`
	Endotoxin    string    `json:"endotoxin"`
	Passed       bool      `json:"passed"`
	ReportedAt   time.Time `json:"reported_at"`
}

// Transition is one step of a booking's history.
type Transition struct {
	From  string    `json:"from"`
	To    string    `json:"to"`
	Cause string    `json:"cause"`
	At    time.Time `json:"at"`
}

// Payment is one payment of a booking.
type Payment struct {
	PaymentID       string     `json:"payment_id"`
	Stage           string     `json:"stage"`
	PaymentIntentID string     `json:"payment_intent_id"`
	Amount          Money      `json:"amount"`
	AmountReceived  Money      `json:"amount_received"`
	Status          string     `json:"status"`
	OffSession      bool       `json:"off_session"`
	PaymentMethodID string     `json:"payment_method_id,omitempty"`
	FailureCode     string     `json:"failure_code,omitempty"`
	FailureMessage  string     `json:"failure_message,omitempty"`
	SucceededAt     *time.Time `json:"succeeded_at,omitempty"`
	CreatedAt       time.Time  `json:"created_at"`
}

// CellsReport is the clinic's report that the cells are cultured.
type CellsReport struct {
	CellCount int64 `json:"cell_count"`
	// ViabilityPct is a number, or a numeric string as some clinic
	// systems send it.
	ViabilityPct any    `json:"viability_pct"`
	Sterility    string `json:"sterility"`
	Endotoxin    string `json:"endotoxin"`
}

// Finance and Stripe.

// Finance is one booking's money, for reconciliation.
type Finance struct {
	BookingID   string       `json:"booking_id"`
	ClinicID    string       `json:"clinic_id"`
	Currency    string       `json:"currency"`
	Expected    Money        `json:"expected"`
	Received    Money        `json:"received"`
	Outstanding Money        `json:"outstanding"`
	Settled     bool         `json:"settled"`
	Deposit     StageFinance `json:"deposit"`
	Balance     StageFinance `json:"balance"`
}

// StageFinance is what one stage should bring in and what it did.
type StageFinance struct {
	Expected        Money      `json:"expected"`
	Received        Money      `json:"received"`
	Outstanding     Money      `json:"outstanding"`
	Status          string     `json:"status"`
	PaymentIntentID string     `json:"payment_intent_id,omitempty"`
	SucceededAt     *time.Time `json:"succeeded_at,omitempty"`
}

// WebhookReceipt answers a Stripe webhook.
type WebhookReceipt struct {
	Received bool   `json:"received"`
	Outcome  string `json:"outcome"`
}

// stripeEventJSON is a Stripe webhook event carrying a payment intent.
type stripeEventJSON struct {
	ID              string `json:"id"`
	Object          string `json:"object"`
	APIVersion      string `json:"api_version"`
	Created         int64  `json:"created"`
	Type            string `json:"type"`
	Livemode        bool   `json:"livemode"`
	PendingWebhooks int    `json:"pending_webhooks"`
	Data            struct {
		Object paymentIntent `json:"object"`
	} `json:"data"`
}

// paymentIntent is the part of a Stripe PaymentIntent payment reads from a
// webhook event.
type paymentIntent struct {
	ID               string            `json:"id"`
	Object           string            `json:"object"`
	Amount           int64             `json:"amount"`
	AmountReceived   int64             `json:"amount_received"`
	Currency         string            `json:"currency"`
	Status           string            `json:"status"`
	Customer         string            `json:"customer,omitempty"`
	PaymentMethod    string            `json:"payment_method,omitempty"`
	Metadata         map[string]string `json:"metadata,omitempty"`
	LastPaymentError *paymentError     `json:"last_payment_error,omitempty"`
}

type paymentError struct {
	Type    string `json:"type"`
	Code    string `json:"code"`
	Message string `json:"message"`
}
