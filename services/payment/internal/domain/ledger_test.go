package domain

import (
	"testing"
	"time"

	"github.com/saisei-health/platform/pkg/money"
)

func TestALedgerTransactionBalancesPerCurrency(t *testing.T) {
	yen, usd := money.Yen(1_900_000), money.New(12_000, money.USD)
	ok := LedgerTransaction{Source: "ch_1", Kind: KindCharge, Entries: []Entry{
		Debit(AccountStripeBalance, yen), Credit("booking:b:deposit_received", yen),
		Debit(AccountStripeBalance, usd), Credit("booking:b:deposit_received", usd)}}
	if err := ok.Validate(); err != nil {
		t.Fatalf("balanced in each currency: %v", err)
	}
	for name, tx := range map[string]LedgerTransaction{
		"off by one yen": {Source: "ch_2", Entries: []Entry{Debit("stripe:balance", yen), Credit("bank", money.Yen(1_899_999))}},
		"balanced only across currencies": {Source: "ch_3", Entries: []Entry{Debit("stripe:balance", money.Yen(12_000)),
			Credit("bank", money.New(12_000, money.USD))}},
		"one entry":     {Source: "ch_4", Entries: []Entry{Debit("stripe:balance", yen)}},
		"a zero entry":  {Source: "ch_5", Entries: []Entry{Debit("stripe:balance", money.Yen(0)), Credit("bank", money.Yen(0))}},
		"no source":     {Entries: []Entry{Debit("stripe:balance", yen), Credit("bank", yen)}},
		"a bad account": {Source: "ch_6", Entries: []Entry{Debit("stripe::balance", yen), Credit("bank", yen)}},
	} {
		if err := tx.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestAReceivedPaymentIsCreditedToItsStageUnderItsCharge(t *testing.T) {
	at := time.Date(2026, 11, 26, 2, 0, 0, 0, time.UTC)
	p := Payment{BookingID: "b1", ClinicID: "ginza", Stage: Balance, PaymentIntentID: "pi_1",
		AmountReceived: money.Yen(1_210_000), SucceededAt: &at}
	tx := Received(p, "ch_9")
	if err := tx.Validate(); err != nil {
		t.Fatal(err)
	}
	if tx.Source != "ch_9" || tx.Kind != KindCharge || !tx.OccurredAt.Equal(at) ||
		tx.Entries[0] != Debit("stripe:balance", money.Yen(1_210_000)) ||
		tx.Entries[1] != Credit("booking:b1:balance_received", money.Yen(1_210_000)) {
		t.Fatalf("%+v", tx)
	}
	if Received(p, "").Source != "pi_1" {
		t.Fatal("without a charge id the intent is the source")
	}
}
