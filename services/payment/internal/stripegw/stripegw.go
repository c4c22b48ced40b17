// Package stripegw is payment's only door to Stripe (stripe-go v76): it
// creates customers and PaymentIntents with deterministic idempotency keys,
// verifies webhook signatures, and turns Stripe's answers and events into
// domain terms. Stripe's vocabulary (statuses, decline codes, event types)
// stops here.
package stripegw

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/saisei-health/platform/pkg/money"
	"github.com/saisei-health/platform/services/payment/internal/domain"
)

// Gateway talks to the Stripe API (or stripe-mock) at a configurable URL.
type Gateway struct {
	api           *client.API
	webhookSecret string
}

// New returns a Gateway. baseURL is https://api.stripe.com in production
// and stripe-mock's URL in development; httpClient carries the trace;
// webhookSecret is the endpoint's signing secret (whsec_…).
func New(apiKey, baseURL, webhookSecret string, httpClient *http.Client) *Gateway {
	backends := stripe.NewBackendsWithConfig(&stripe.BackendConfig{
		URL:               stripe.String(baseURL),
		HTTPClient:        httpClient,
		MaxNetworkRetries: stripe.Int64(2), // retried with the same idempotency key
		LeveledLogger:     &stripe.LeveledLogger{Level: stripe.LevelError},
	})
	return &Gateway{api: client.New(apiKey, backends), webhookSecret: webhookSecret}
}

// Intent is a created PaymentIntent.
type Intent struct {
	ID           string
	ClientSecret string
	State        domain.IntentState
}

// CardError is a declined or authentication-requiring card. State is the
// PaymentIntent's state: Stripe's own when it attached the intent, otherwise
// what the decline means (failed, or needing authentication).
type CardError struct {
	Code    string
	Message string
	State   domain.IntentState
}

func (e *CardError) Error() string { return "stripe card error " + e.Code + ": " + e.Message }

// CreateCustomer creates the Stripe customer whose saved card pays the balance.
func (g *Gateway) CreateCustomer(ctx context.Context, bookingID, name, email string) (string, error) {
	p := &stripe.CustomerParams{Name: stripe.String(name), Email: stripe.String(email)}
	p.Context = ctx
	p.AddMetadata("booking_id", bookingID)
	p.SetIdempotencyKey(domain.IdempotencyKey(bookingID, "customer"))
	c, err := g.api.Customers.New(p)
	if err != nil {
		return "", translate(err)
	}
	return c.ID, nil
}

// CreateDepositIntent creates the deposit PaymentIntent. The patient's app
// confirms it with the client secret; setup_future_usage=off_session saves
// the card to the customer for the balance.
func (g *Gateway) CreateDepositIntent(ctx context.Context, pay domain.Payment) (Intent, error) {
	if pay.Method == domain.ByBankTransfer {
		return g.createTransferIntent(ctx, pay)
	}
	p := &stripe.PaymentIntentParams{
		Amount:                  stripe.Int64(pay.Amount.Amount),
		Currency:                stripe.String(strings.ToLower(string(pay.Amount.Currency))),
		Customer:                stripe.String(pay.CustomerID),
		SetupFutureUsage:        stripe.String(string(stripe.PaymentIntentSetupFutureUsageOffSession)),
		AutomaticPaymentMethods: &stripe.PaymentIntentAutomaticPaymentMethodsParams{Enabled: stripe.Bool(true)},
		Description:             stripe.String("Deposit for cell culture, booking " + pay.BookingID),
	}
	return g.createIntent(ctx, p, pay, "deposit")
}

// createTransferIntent creates a deposit paid by Japanese bank transfer:
// the customer's balance funded by a transfer to the virtual account and
// reference Stripe assigns, confirmed at once so the instructions exist.
func (g *Gateway) createTransferIntent(ctx context.Context, pay domain.Payment) (Intent, error) {
	p := &stripe.PaymentIntentParams{
		Amount:             stripe.Int64(pay.Amount.Amount),
		Currency:           stripe.String(strings.ToLower(string(pay.Amount.Currency))),
		Customer:           stripe.String(pay.CustomerID),
		PaymentMethodTypes: []*string{stripe.String("customer_balance")},
		PaymentMethodData:  &stripe.PaymentIntentPaymentMethodDataParams{Type: stripe.String("customer_balance")},
		PaymentMethodOptions: &stripe.PaymentIntentPaymentMethodOptionsParams{
			CustomerBalance: &stripe.PaymentIntentPaymentMethodOptionsCustomerBalanceParams{
				FundingType: stripe.String("bank_transfer"),
				BankTransfer: &stripe.PaymentIntentPaymentMethodOptionsCustomerBalanceBankTransferParams{
					Type: stripe.String("jp_bank_transfer")},
			}},
		Confirm:     stripe.Bool(true),
		Description: stripe.String(string(pay.Stage) + " by bank transfer, booking " + pay.BookingID),
	}
	return g.createIntent(ctx, p, pay, string(pay.Stage))
}

// CashBalance is what a customer transferred beyond what their payments
// took, in yen.
func (g *Gateway) CashBalance(ctx context.Context, customerID string) (money.Money, error) {
	p := &stripe.CashBalanceParams{Customer: stripe.String(customerID)}
	p.Context = ctx
	cb, err := g.api.CashBalances.Get(p)
	if err != nil {
		return money.Money{}, translate(err)
	}
	return money.Yen(cb.Available["jpy"]), nil
}

// RefundCashBalance returns money a customer overpaid by bank transfer;
// Stripe emails them for their bank details.
func (g *Gateway) RefundCashBalance(ctx context.Context, bookingID, customerID, email string, amount money.Money) (string, error) {
	p := &stripe.RefundParams{Customer: stripe.String(customerID), Origin: stripe.String("customer_balance"),
		Amount: stripe.Int64(amount.Amount), Currency: stripe.String(strings.ToLower(string(amount.Currency))),
		InstructionsEmail: stripe.String(email)}
	p.Context = ctx
	p.AddMetadata("booking_id", bookingID)
	p.SetIdempotencyKey(domain.IdempotencyKey(bookingID, "overpayment"))
	re, err := g.api.Refunds.New(p)
	if err != nil {
		return "", translate(err)
	}
	return re.ID, nil
}

// ChargeBalance charges the balance off-session on the card saved with the
// deposit. It is called only when the cells have passed QC, shortly before
// administration: an authorization taken weeks ahead would have expired.
func (g *Gateway) ChargeBalance(ctx context.Context, pay domain.Payment) (Intent, error) {
	if pay.Method == domain.ByBankTransfer {
		return g.createTransferIntent(ctx, pay)
	}
	p := &stripe.PaymentIntentParams{
		Amount:        stripe.Int64(pay.Amount.Amount),
		Currency:      stripe.String(strings.ToLower(string(pay.Amount.Currency))),
		Customer:      stripe.String(pay.CustomerID),
		PaymentMethod: stripe.String(pay.PaymentMethodID),
		OffSession:    stripe.Bool(true),
		Confirm:       stripe.Bool(true),
		Description:   stripe.String("Balance before administration, booking " + pay.BookingID),
	}
	return g.createIntent(ctx, p, pay, "balance")
}

func (g *Gateway) createIntent(ctx context.Context, p *stripe.PaymentIntentParams, pay domain.Payment, stage string) (Intent, error) {
	p.Context = ctx
	p.AddMetadata("booking_id", pay.BookingID)
	p.AddMetadata("payment_id", pay.ID)
	p.AddMetadata("clinic_id", pay.ClinicID)
	p.AddMetadata("stage", stage)
	p.SetIdempotencyKey(domain.IdempotencyKey(pay.BookingID, stage))
	pi, err := g.api.PaymentIntents.New(p)
	if err != nil {
		return Intent{}, translate(err)
	}
	return Intent{ID: pi.ID, ClientSecret: pi.ClientSecret, State: StateOf(pi, time.Now())}, nil
}

// FindIntent looks for the PaymentIntent created for a payment (by the
// payment_id in its metadata), for a charge whose outcome was never stored
// and whose idempotency key is about to expire: Stripe keeps a key for 24
// hours, so a retry after that would create a second intent. It returns
// nil when there is none.
func (g *Gateway) FindIntent(ctx context.Context, paymentID string) (*Intent, error) {
	p := &stripe.PaymentIntentSearchParams{SearchParams: stripe.SearchParams{
		Query: "metadata['payment_id']:'" + paymentID + "'", Context: ctx}}
	it := g.api.PaymentIntents.Search(p)
	for it.Next() {
		pi := it.PaymentIntent()
		if pi.Metadata["payment_id"] == paymentID { // Stripe's search is a filter; this is the proof
			return &Intent{ID: pi.ID, ClientSecret: pi.ClientSecret, State: StateOf(pi, time.Now())}, nil
		}
	}
	if err := it.Err(); err != nil {
		return nil, translate(err)
	}
	return nil, nil
}

func translate(err error) error {
	var se *stripe.Error
	if errors.As(err, &se) && se.Type == stripe.ErrorTypeCard {
		ce := &CardError{Code: string(se.Code), Message: se.Msg}
		if se.PaymentIntent != nil && se.PaymentIntent.ID != "" {
			ce.State = StateOf(se.PaymentIntent, time.Now())
		} else {
			ce.State = domain.IntentState{Status: failureStatus(string(se.Code)), At: time.Now().UTC()}
		}
		if ce.State.FailureCode == "" {
			ce.State.FailureCode, ce.State.FailureMessage = ce.Code, ce.Message
		}
		return ce
	}
	return fmt.Errorf("stripe: %w", err)
}

// StateOf reads a PaymentIntent into domain terms.
func StateOf(pi *stripe.PaymentIntent, at time.Time) domain.IntentState {
	s := domain.IntentState{ID: pi.ID, At: at}
	if c, err := money.ParseCurrency(string(pi.Currency)); err == nil {
		s.AmountReceived = money.New(pi.AmountReceived, c)
	}
	if pi.PaymentMethod != nil {
		s.PaymentMethodID = pi.PaymentMethod.ID
	}
	if pi.LatestCharge != nil {
		s.ChargeID = pi.LatestCharge.ID
	}
	if e := pi.LastPaymentError; e != nil {
		s.FailureCode, s.FailureMessage = string(e.Code), e.Msg
		if s.FailureCode == "" {
			s.FailureCode = string(e.Type)
		}
	}
	if na := pi.NextAction; na != nil && na.DisplayBankTransferInstructions != nil && pi.Status != stripe.PaymentIntentStatusSucceeded {
		in := na.DisplayBankTransferInstructions
		t := &domain.TransferInstructions{Reference: in.Reference, HostedURL: in.HostedInstructionsURL,
			AmountRemaining: money.New(in.AmountRemaining, s.AmountReceived.Currency)}
		for _, a := range in.FinancialAddresses {
			if z := a.Zengin; z != nil {
				t.BankName, t.BankCode, t.BranchName, t.BranchCode = z.BankName, z.BankCode, z.BranchName, z.BranchCode
				t.AccountType, t.AccountNumber, t.AccountHolder = z.AccountType, z.AccountNumber, z.AccountHolderName
				break
			}
		}
		s.Status, s.Transfer = domain.IntentAwaitingTransfer, t
		return s
	}
	switch pi.Status {
	case stripe.PaymentIntentStatusSucceeded:
		s.Status = domain.IntentSucceeded
	case stripe.PaymentIntentStatusProcessing:
		s.Status = domain.IntentProcessing
	case stripe.PaymentIntentStatusRequiresAction, stripe.PaymentIntentStatusRequiresConfirmation:
		s.Status = domain.IntentNeedsAuthentication
	case stripe.PaymentIntentStatusRequiresPaymentMethod:
		// Stripe returns an intent to requires_payment_method both before
		// the first attempt and after a declined one.
		s.Status = domain.IntentAwaitingPaymentMethod
		if pi.LastPaymentError != nil {
			s.Status = failureStatus(s.FailureCode)
		}
	case stripe.PaymentIntentStatusCanceled:
		s.Status = domain.IntentCanceled
	default:
		s.Status = domain.IntentOther
	}
	return s
}

// failureStatus is what a decline code means: an off-session charge the
// bank wants authenticated needs the patient; anything else failed.
func failureStatus(code string) domain.IntentStatus {
	if code == string(stripe.ErrorCodeAuthenticationRequired) {
		return domain.IntentNeedsAuthentication
	}
	return domain.IntentFailed
}

func readObject(e stripe.Event, into any) error {
	if e.Data == nil || len(e.Data.Raw) == 0 {
		return errors.New("no data")
	}
	return json.Unmarshal(e.Data.Raw, into)
}

// Refund returns r.Amount of its payment to the patient, under the key
// booking:<id>:refund:<refund id>: a retry returns the first refund.
func (g *Gateway) Refund(ctx context.Context, r domain.Refund) (domain.RefundState, error) {
	p := &stripe.RefundParams{
		PaymentIntent: stripe.String(r.PaymentIntentID),
		Amount:        stripe.Int64(r.Amount.Amount),
		Reason:        stripe.String(string(stripe.RefundReasonRequestedByCustomer)),
	}
	p.Context = ctx
	p.AddMetadata("refund_id", r.ID)
	p.AddMetadata("booking_id", r.BookingID)
	p.AddMetadata("payment_id", r.PaymentID)
	p.SetIdempotencyKey(domain.IdempotencyKey(r.BookingID, "refund:"+r.ID))
	re, err := g.api.Refunds.New(p)
	if err != nil {
		return domain.RefundState{}, refusedOr(err)
	}
	return RefundStateOf(re, time.Now()), nil
}

// RetrieveIntent reads a PaymentIntent as it is now, with its client
// secret: what the patient's app needs to pay it on-session.
func (g *Gateway) RetrieveIntent(ctx context.Context, id string) (Intent, error) {
	p := &stripe.PaymentIntentParams{}
	p.Context = ctx
	pi, err := g.api.PaymentIntents.Get(id, p)
	if err != nil {
		return Intent{}, translate(err)
	}
	return Intent{ID: pi.ID, ClientSecret: pi.ClientSecret, State: StateOf(pi, time.Now())}, nil
}

// CancelIntent cancels a PaymentIntent nobody paid (the booking expired),
// so the patient can no longer pay it. An intent that already succeeded,
// or was canceled before, cannot be: ErrRefused, and the caller decides
// from the intent's state (a success is refunded when it is reported).
func (g *Gateway) CancelIntent(ctx context.Context, bookingID string, stage domain.Stage, intentID string) error {
	p := &stripe.PaymentIntentCancelParams{CancellationReason: stripe.String(string(stripe.PaymentIntentCancellationReasonAbandoned))}
	p.Context = ctx
	p.SetIdempotencyKey(domain.IdempotencyKey(bookingID, "cancel-"+string(stage)))
	if _, err := g.api.PaymentIntents.Cancel(intentID, p); err != nil {
		return refusedOr(err)
	}
	return nil
}

// RefundsOfCharge reads a charge's refunds as they are now.
func (g *Gateway) RefundsOfCharge(ctx context.Context, chargeID string) ([]domain.RefundState, error) {
	p := &stripe.RefundListParams{Charge: stripe.String(chargeID)}
	p.Context = ctx
	it := g.api.Refunds.List(p)
	var out []domain.RefundState
	for it.Next() {
		out = append(out, RefundStateOf(it.Refund(), time.Now()))
	}
	if err := it.Err(); err != nil {
		return nil, translate(err)
	}
	return out, nil
}

// DisputeStateOf reads a Dispute into domain terms, with the money its
// balance transactions moved.
func DisputeStateOf(dp *stripe.Dispute, at time.Time) domain.DisputeState {
	st := domain.DisputeState{ID: dp.ID, Reason: string(dp.Reason), At: at}
	c, _ := money.ParseCurrency(string(dp.Currency))
	st.Amount = money.New(dp.Amount, c)
	if dp.Charge != nil {
		st.ChargeID = dp.Charge.ID
	}
	if dp.PaymentIntent != nil {
		st.PaymentIntentID = dp.PaymentIntent.ID
	}
	switch dp.Status {
	case stripe.DisputeStatusWon:
		st.Status = domain.DisputeWon
	case stripe.DisputeStatusLost:
		st.Status = domain.DisputeLost
	case stripe.DisputeStatusWarningClosed:
		st.Status = domain.DisputeWarningClosed
	default:
		st.Status = domain.DisputeOpen
	}
	for _, bt := range dp.BalanceTransactions {
		if bt == nil || bt.ID == "" {
			continue
		}
		btc, err := money.ParseCurrency(string(bt.Currency))
		if err != nil {
			btc = c
		}
		st.Moves = append(st.Moves, domain.MovedMoney{ID: bt.ID, Amount: money.New(bt.Amount, btc), Fee: money.New(bt.Fee, btc),
			At: time.Unix(bt.Created, 0).UTC()})
	}
	return st
}

// BalanceLines calls fn for each balance transaction created at or after
// since, newest first (Stripe's order), page by page.
func (g *Gateway) BalanceLines(ctx context.Context, since time.Time, fn func(domain.BalanceLine) error) error {
	p := &stripe.BalanceTransactionListParams{}
	p.Context = ctx
	p.Limit = stripe.Int64(100)
	if !since.IsZero() {
		p.CreatedRange = &stripe.RangeQueryParams{GreaterThanOrEqual: since.Unix()}
	}
	it := g.api.BalanceTransactions.List(p)
	for it.Next() {
		bt := it.BalanceTransaction()
		c, err := money.ParseCurrency(string(bt.Currency))
		if err != nil {
			return fmt.Errorf("balance transaction %s: %w", bt.ID, err)
		}
		l := domain.BalanceLine{ID: bt.ID, Type: string(bt.Type), Category: string(bt.ReportingCategory),
			Amount: money.New(bt.Amount, c), Fee: money.New(bt.Fee, c), Net: money.New(bt.Net, c), Created: time.Unix(bt.Created, 0).UTC()}
		if bt.Source != nil {
			l.Source = bt.Source.ID
		}
		if err := fn(l); err != nil {
			return err
		}
	}
	if err := it.Err(); err != nil {
		return translate(err)
	}
	return nil
}

// IntentOfCharge reads which PaymentIntent a charge belongs to, for an event
// that names only the charge.
func (g *Gateway) IntentOfCharge(ctx context.Context, chargeID string) (string, error) {
	p := &stripe.ChargeParams{}
	p.Context = ctx
	ch, err := g.api.Charges.Get(chargeID, p)
	if err != nil {
		return "", translate(err)
	}
	if ch.PaymentIntent == nil {
		return "", nil
	}
	return ch.PaymentIntent.ID, nil
}

// RefundStateOf reads a Refund into domain terms.
func RefundStateOf(re *stripe.Refund, at time.Time) domain.RefundState {
	st := domain.RefundState{ID: re.ID, At: at, RefundID: re.Metadata["refund_id"], FailureReason: string(re.FailureReason)}
	if c, err := money.ParseCurrency(string(re.Currency)); err == nil {
		st.Amount = money.New(re.Amount, c)
	}
	if re.PaymentIntent != nil {
		st.PaymentIntentID = re.PaymentIntent.ID
	}
	switch re.Status {
	case stripe.RefundStatusSucceeded:
		st.Status = domain.RefundSucceeded
	case stripe.RefundStatusFailed:
		st.Status = domain.RefundFailed
	case stripe.RefundStatusCanceled:
		st.Status = domain.RefundCanceled
	case stripe.RefundStatusRequiresAction:
		st.Status = domain.RefundRequiresAction
	default:
		st.Status = domain.RefundPending
	}
	return st
}

// ErrBadSignature means a webhook was not signed with the endpoint secret
// (or too long ago: Stripe's five-minute tolerance against replays).
var ErrBadSignature = errors.New("stripe signature verification failed")

// refusedOr is ErrRefused for a request Stripe refused as asked (a 4xx
// other than rate limiting or an idempotency conflict: already refunded,
// more than was charged, an intent that cannot be cancelled), which
// retrying cannot change; otherwise the error translated.
func refusedOr(err error) error {
	var se *stripe.Error
	if errors.As(err, &se) && se.HTTPStatusCode >= 400 && se.HTTPStatusCode < 500 && se.HTTPStatusCode != http.StatusTooManyRequests &&
		se.HTTPStatusCode != http.StatusConflict {
		return fmt.Errorf("%w: %s %s", ErrRefused, se.Code, se.Msg)
	}
	return translate(err)
}

// ErrRefused means Stripe refused a request as asked; retrying cannot help.
var ErrRefused = errors.New("stripe refused the request")

// ErrMalformedEvent means a correctly signed event cannot be read.
var ErrMalformedEvent = errors.New("stripe event is malformed")

// Event is a verified webhook event. Intent is set for PaymentIntent events
// (with the payment id we put in the intent's metadata); other events are
// recorded and ignored.
type Event struct {
	ID      string
	Type    string
	Created time.Time
	Intent  *domain.IntentState
	// Refund is set for refund.* events.
	Refund *domain.RefundState
	// RefundedCharge is the charge of a charge.refunded event: its refunds
	// are read from Stripe (the event's charge does not list them).
	RefundedCharge string
	// Dispute is set for charge.dispute.* events.
	Dispute *domain.DisputeState
	// PaymentID is the metadata's payment_id: the webhook can overtake the
	// response to the call that created the intent.
	PaymentID string
}

// VerifyWebhook checks the Stripe-Signature of payload and reads the event.
// The endpoint is pinned to stripe-go's API version (2023-10-16) in the
// Stripe dashboard; an event of another version is still accepted, because
// only fields stable across versions are read.
func (g *Gateway) VerifyWebhook(payload []byte, signature string) (Event, error) {
	// Checked apart from parsing: a correctly signed body that cannot be
	// read is a malformed event, not a bad signature.
	if err := webhook.ValidatePayload(payload, signature, g.webhookSecret); err != nil {
		return Event{}, fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	var e stripe.Event
	if err := json.Unmarshal(payload, &e); err != nil {
		return Event{}, fmt.Errorf("%w: %v", ErrMalformedEvent, err)
	}
	ev := Event{ID: e.ID, Type: string(e.Type), Created: time.Unix(e.Created, 0).UTC()}
	if ev.ID == "" {
		return Event{}, fmt.Errorf("%w: no id", ErrMalformedEvent)
	}
	switch {
	case strings.HasPrefix(ev.Type, "refund."):
		var re stripe.Refund
		if err := readObject(e, &re); err != nil || re.ID == "" {
			return Event{}, fmt.Errorf("%w: %s carries no refund (%v)", ErrMalformedEvent, ev.ID, err)
		}
		st := RefundStateOf(&re, ev.Created)
		ev.Refund = &st
		return ev, nil
	case strings.HasPrefix(ev.Type, "charge.dispute."):
		var dp stripe.Dispute
		if err := readObject(e, &dp); err != nil || dp.ID == "" {
			return Event{}, fmt.Errorf("%w: %s carries no dispute (%v)", ErrMalformedEvent, ev.ID, err)
		}
		st := DisputeStateOf(&dp, ev.Created)
		ev.Dispute = &st
		return ev, nil
	case ev.Type == "charge.refunded":
		var ch stripe.Charge
		if err := readObject(e, &ch); err != nil || ch.ID == "" {
			return Event{}, fmt.Errorf("%w: %s carries no charge (%v)", ErrMalformedEvent, ev.ID, err)
		}
		ev.RefundedCharge = ch.ID
		return ev, nil
	case !strings.HasPrefix(ev.Type, "payment_intent."):
		return ev, nil
	}
	if e.Data == nil || len(e.Data.Raw) == 0 {
		return Event{}, fmt.Errorf("%w: %s %s carries no data", ErrMalformedEvent, ev.Type, ev.ID)
	}
	var pi stripe.PaymentIntent
	if err := json.Unmarshal(e.Data.Raw, &pi); err != nil {
		return Event{}, fmt.Errorf("%w: %s: %v", ErrMalformedEvent, ev.ID, err)
	}
	if pi.ID == "" {
		return Event{}, fmt.Errorf("%w: %s carries no PaymentIntent id", ErrMalformedEvent, ev.ID)
	}
	// Dated by the event's creation, so late deliveries order right.
	st := StateOf(&pi, ev.Created)
	ev.Intent, ev.PaymentID = &st, pi.Metadata["payment_id"]
	return ev, nil
}
