package devstack

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// JapanCardFeePerMille is Stripe's published card fee in Japan: 3.6 % of
// the amount, for Visa, Mastercard, American Express and JCB alike,
// rounded to the yen.
const JapanCardFeePerMille = 36

// JapanCardFee is Stripe's fee on a card charge of amount yen.
func JapanCardFee(amount int64) int64 { return (amount*JapanCardFeePerMille + 500) / 1000 }

// BalanceTransaction is one line of the Stripe balance the proxy keeps,
// consistent with the charges and refunds it saw.
type BalanceTransaction struct {
	ID                string `json:"id"`
	Object            string `json:"object"`
	Type              string `json:"type"`
	ReportingCategory string `json:"reporting_category"`
	Source            string `json:"source"`
	Amount            int64  `json:"amount"`
	Fee               int64  `json:"fee"`
	Net               int64  `json:"net"`
	Currency          string `json:"currency"`
	Created           int64  `json:"created"`
	AvailableOn       int64  `json:"available_on"`
	Status            string `json:"status"`
}

// stripeBook is the Stripe balance as the proxy tells it: each charge a
// test declares paid, each refund the proxy saw succeed, each payout.
type stripeBook struct {
	mu    sync.Mutex
	lines []BalanceTransaction
	seq   int
}

func (b *stripeBook) add(typ, category, source string, amount, fee int64, at time.Time) BalanceTransaction {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seq++
	bt := BalanceTransaction{ID: fmt.Sprintf("txn_proxy%06d", b.seq), Object: "balance_transaction", Type: typ,
		ReportingCategory: category, Source: source, Amount: amount, Fee: fee, Net: amount - fee, Currency: "jpy",
		Created: at.Unix(), AvailableOn: at.Add(4 * 24 * time.Hour).Unix(), Status: "available"}
	b.lines = append(b.lines, bt)
	return bt
}

// ChargeSucceeded books a card charge the test reports paid (by webhook):
// the amount and Stripe's Japanese card fee.
func (p *StripeProxy) ChargeSucceeded(chargeID string, amount int64, at time.Time) BalanceTransaction {
	return p.book.add("charge", "charge", chargeID, amount, JapanCardFee(amount), at)
}

// PayOut books a payout of amount to the platform's bank, as Stripe does
// on its schedule, and returns the payout's id.
func (p *StripeProxy) PayOut(amount int64, at time.Time) string {
	p.book.mu.Lock()
	id := fmt.Sprintf("po_proxy%06d", p.book.seq+1)
	p.book.mu.Unlock()
	p.book.add("payout", "payout", id, -amount, 0, at)
	return id
}

// DropBalanceTransaction removes the line of source, as if Stripe had
// never moved that money: reconciliation must report it.
func (p *StripeProxy) DropBalanceTransaction(source string) bool {
	p.book.mu.Lock()
	defer p.book.mu.Unlock()
	for i, l := range p.book.lines {
		if l.Source == source {
			p.book.lines = append(p.book.lines[:i], p.book.lines[i+1:]...)
			return true
		}
	}
	return false
}

// ChangeBalanceTransaction sets the amount of source's line.
func (p *StripeProxy) ChangeBalanceTransaction(source string, amount int64) bool {
	p.book.mu.Lock()
	defer p.book.mu.Unlock()
	for i, l := range p.book.lines {
		if l.Source == source {
			p.book.lines[i].Amount, p.book.lines[i].Net = amount, amount-l.Fee
			return true
		}
	}
	return false
}

// AddBalanceTransaction books money the platform never asked for (a charge
// made in the dashboard, another integration).
func (p *StripeProxy) AddBalanceTransaction(typ, source string, amount int64, at time.Time) BalanceTransaction {
	fee := int64(0)
	if typ == "charge" {
		fee = JapanCardFee(amount)
	}
	return p.book.add(typ, typ, source, amount, fee, at)
}

// BalanceTransactions returns the book, oldest first.
func (p *StripeProxy) BalanceTransactions() []BalanceTransaction {
	p.book.mu.Lock()
	defer p.book.mu.Unlock()
	return append([]BalanceTransaction(nil), p.book.lines...)
}

// serveBalanceTransactions answers GET /v1/balance_transactions as Stripe
// does: newest first, created[gte|gt|lte|lt], limit, starting_after.
func (p *StripeProxy) serveBalanceTransactions(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	lines := p.BalanceTransactions()
	sort.SliceStable(lines, func(i, j int) bool {
		if lines[i].Created != lines[j].Created {
			return lines[i].Created > lines[j].Created
		}
		return lines[i].ID > lines[j].ID
	})
	bound := func(key string) (int64, bool) {
		n, err := strconv.ParseInt(q.Get("created["+key+"]"), 10, 64)
		return n, err == nil
	}
	var out []BalanceTransaction
	after := q.Get("starting_after")
	skipping := after != ""
	for _, l := range lines {
		if skipping {
			skipping = l.ID != after
			continue
		}
		if v, ok := bound("gte"); ok && l.Created < v {
			continue
		}
		if v, ok := bound("gt"); ok && l.Created <= v {
			continue
		}
		if v, ok := bound("lte"); ok && l.Created > v {
			continue
		}
		if v, ok := bound("lt"); ok && l.Created >= v {
			continue
		}
		out = append(out, l)
	}
	limit := 10
	if n, err := strconv.Atoi(q.Get("limit")); err == nil && n > 0 && n <= 100 {
		limit = n
	}
	more := len(out) > limit
	if more {
		out = out[:limit]
	}
	if out == nil {
		out = []BalanceTransaction{}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"object": "list", "url": "/v1/balance_transactions", "has_more": more, "data": out})
}

// seeRefund books a refund stripe-mock answered as succeeded.
func (p *StripeProxy) seeRefund(resp *http.Response) error {
	if resp.Request.Method != http.MethodPost || resp.Request.URL.Path != "/v1/refunds" || resp.StatusCode != http.StatusOK {
		return nil
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	var re struct {
		ID     string `json:"id"`
		Amount int64  `json:"amount"`
		Status string `json:"status"`
	}
	if json.Unmarshal(body, &re) == nil && re.Status == "succeeded" && strings.HasPrefix(re.ID, "re_") {
		p.book.add("refund", "refund", re.ID, -re.Amount, 0, time.Now())
	}
	return nil
}

// bankTransferHeader marks a request for a bank-transfer PaymentIntent, for
// its answer to carry the instructions stripe-mock's fixture lacks.
const bankTransferHeader = "X-Stripe-Proxy-Bank-Transfer"

// bankTransferInstructions makes stripe-mock's answer to a bank-transfer
// PaymentIntent what Stripe answers: requires_action, with the Japanese
// bank account (zengin) and reference to transfer to.
func bankTransferInstructions(resp *http.Response) error {
	amount := resp.Request.Header.Get(bankTransferHeader)
	if amount == "" || resp.StatusCode != http.StatusOK {
		return nil
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var pi map[string]any
	if err := json.Unmarshal(body, &pi); err != nil {
		resp.Body = io.NopCloser(bytes.NewReader(body))
		return nil
	}
	n, _ := strconv.ParseInt(amount, 10, 64)
	id, _ := pi["id"].(string)
	pi["status"], pi["amount"], pi["amount_received"], pi["currency"] = "requires_action", n, 0, "jpy"
	pi["next_action"] = map[string]any{"type": "display_bank_transfer_instructions",
		"display_bank_transfer_instructions": map[string]any{"type": "jp_bank_transfer", "amount_remaining": n, "currency": "jpy",
			"reference": "SAISEI" + strings.ToUpper(id[len(id)-6:]), "hosted_instructions_url": "https://payments.stripe.com/bank_transfers/instructions/test_" + id,
			"financial_addresses": []any{map[string]any{"type": "zengin", "supported_networks": []string{"zengin"},
				"zengin": map[string]any{"bank_name": "Test Bank", "bank_code": "0999", "branch_name": "Saisei Branch", "branch_code": "123",
					"account_type": "futsu", "account_number": "1234567", "account_holder_name": "ストライプジャパン（カ"}}}}}
	out, err := json.Marshal(pi)
	if err != nil {
		return err
	}
	resp.Body = io.NopCloser(bytes.NewReader(out))
	resp.ContentLength = int64(len(out))
	resp.Header.Set("Content-Length", strconv.Itoa(len(out)))
	return nil
}

// Overpaid sets what a customer transferred beyond their payments: their
// cash balance at Stripe.
func (p *StripeProxy) Overpaid(customerID string, amount int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cash == nil {
		p.cash = map[string]int64{}
	}
	p.cash[customerID] = amount
}

func (p *StripeProxy) serveCashBalance(w http.ResponseWriter, customer string) {
	p.mu.Lock()
	n := p.cash[customer]
	p.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"object": "cash_balance", "customer": customer, "livemode": false,
		"available": map[string]int64{"jpy": n}, "settings": map[string]any{"reconciliation_mode": "automatic"}})
}
