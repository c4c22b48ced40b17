package server_test

import (
	"net/url"
	"testing"
	"time"

	"github.com/saisei-health/platform/pkg/identity"
	"github.com/saisei-health/platform/pkg/money"
	"github.com/saisei-health/platform/pkg/subject"
	"github.com/saisei-health/platform/pkg/tokyo"
)

type statement struct {
	Status     string      `json:"status"`
	RateBP     int         `json:"commission_rate_bp"`
	Released   money.Money `json:"released"`
	Commission money.Money `json:"commission"`
	Owed       money.Money `json:"owed"`
	Held       money.Money `json:"held"`
	Lines      []struct {
		BookingID  string      `json:"booking_id"`
		Held       bool        `json:"held"`
		Released   money.Money `json:"released"`
		Commission money.Money `json:"commission"`
		Owed       money.Money `json:"owed"`
	} `json:"lines"`
}

func (st statement) line(t *testing.T, bookingID string) (released, commission, owed int64, held bool) {
	t.Helper()
	for _, l := range st.Lines {
		if l.BookingID == bookingID {
			return l.Released.Amount, l.Commission.Amount, l.Owed.Amount, l.Held
		}
	}
	t.Fatalf("booking %s is not on the statement %+v", bookingID, st)
	return
}

// A clinic's monthly statement releases what its bookings collected, less
// the platform's commission, holds a disputed booking until the dispute is
// won, and takes back next month what was refunded after it was released.
func TestSettlementStatementsReleaseWhatBookingsCollected(t *testing.T) {
	s := startPayment(t)
	admin := map[string]string{"Authorization": "Bearer " + s.issuer.Token(t, identity.Principal{Subject: "operator-1", Role: identity.Admin})}
	if r := s.call(t, "PUT", "/v1/admin/commissions/"+clinicID, map[string]int{"rate_bp": 1500}, admin); r.Status != 200 {
		t.Fatalf("set commission: %d %s", r.Status, r.Raw)
	}
	if r := s.call(t, "PUT", "/v1/admin/commissions/"+clinicID, map[string]int{"rate_bp": 9000}, admin); r.Status != 422 || !r.problem(t).names("rate_bp") {
		t.Fatalf("a 90 %% commission: %d %s", r.Status, r.Raw)
	}

	paid := s.paidWithCharge(t, "ch_set_paid", false)
	refunded := s.paidWithCharge(t, "ch_set_refunded", false)
	s.waitHandled(t, refundConsumer, s.publish(t, "booking:"+refunded+":cancelled", subject.Booking(clinicID, subject.Cancelled),
		cancelled(refunded, depositYen-100_000, 100_000)))
	disputed := s.paidWithCharge(t, "ch_set_disputed", false)
	now := time.Now()
	withdrawn := movement("txn_set_withdrawn", -depositYen, 1_500, now)
	s.deliver(t, "evt_set_dp", "charge.dispute.created", now, dispute("dp_set", "ch_set_disputed", "", "needs_response", depositYen, withdrawn))

	period := now.In(tokyo.Location).Format("2006-01")
	next := now.In(tokyo.Location).AddDate(0, 1, 0).Format("2006-01")
	get := func(period string) statement {
		t.Helper()
		r := s.call(t, "GET", "/v1/finance/settlements?clinic="+clinicID+"&period="+period, nil, nil)
		if r.Status != 200 {
			t.Fatalf("statement %s: %d %s", period, r.Status, r.Raw)
		}
		var st statement
		r.decode(t, &st)
		return st
	}
	open := get(period)
	if rel, com, owed, _ := open.line(t, paid); rel != depositYen || com != 285_000 || owed != 1_615_000 {
		t.Errorf("paid booking: released %d, commission %d, owed %d", rel, com, owed)
	}
	if rel, com, owed, _ := open.line(t, refunded); rel != 100_000 || com != 15_000 || owed != 85_000 {
		t.Errorf("refunded booking: released %d, commission %d, owed %d", rel, com, owed)
	}
	if rel, _, _, held := open.line(t, disputed); rel != 0 || !held {
		t.Errorf("disputed booking: released %d, held %v", rel, held)
	}
	if open.Status != "open" || open.RateBP != 1500 || open.Owed != money.Yen(1_700_000) || open.Commission != money.Yen(300_000) ||
		open.Held != money.Yen(depositYen) {
		t.Fatalf("statement %+v", open)
	}

	close := func(period string) (int, statement) {
		r := s.call(t, "POST", "/v1/finance/settlements/close", map[string]string{"clinic_id": clinicID, "period": period}, nil)
		var st statement
		if r.Status == 200 {
			r.decode(t, &st)
		} else {
			_ = r.problem(t)
		}
		return r.Status, st
	}
	if code, _ := close(period); code != 409 {
		t.Fatalf("closing a month not over: %d", code)
	}
	s.clock.Advance(32 * 24 * time.Hour)
	code, closed := close(period)
	if code != 200 || closed.Status != "closed" || closed.Owed != money.Yen(1_700_000) {
		t.Fatalf("closed: %d %+v", code, closed)
	}
	if code, _ := close(period); code != 409 {
		t.Fatalf("closing twice: %d", code)
	}
	ledger := s.ledger(t, url.Values{})
	if ledger.balanceOf("clinic:"+clinicID+":owed") != -1_700_000 || ledger.balanceOf("platform:commission:"+clinicID) != -300_000 ||
		ledger.balanceOf("booking:"+paid+":settled") != depositYen {
		t.Fatalf("ledger after closing: owed %d, commission %d", ledger.balanceOf("clinic:"+clinicID+":owed"),
			ledger.balanceOf("platform:commission:"+clinicID))
	}
	if again := get(period); again.Status != "closed" || again.Owed != money.Yen(1_700_000) {
		t.Fatalf("the closed statement read again: %+v", again)
	}

	// Next month: the dispute is won, and the paid booking is cancelled
	// with ¥500,000 refunded after its money was released.
	reinstated := movement("txn_set_reinstated", depositYen, 0, now.Add(time.Hour))
	s.deliver(t, "evt_set_dp_won", "charge.dispute.closed", now.Add(time.Hour),
		dispute("dp_set", "ch_set_disputed", "", "won", depositYen, withdrawn, reinstated))
	s.waitHandled(t, refundConsumer, s.publish(t, "booking:"+paid+":cancelled", subject.Booking(clinicID, subject.Cancelled),
		cancelled(paid, 500_000, depositYen-500_000)))
	following := get(next)
	if rel, _, owed, held := following.line(t, disputed); rel != depositYen || held || owed != 1_615_000 {
		t.Errorf("the won dispute's booking next month: released %d, owed %d, held %v", rel, owed, held)
	}
	if rel, com, owed, _ := following.line(t, paid); rel != -500_000 || com != -75_000 || owed != -425_000 {
		t.Errorf("refunded after release: released %d, commission %d, owed %d", rel, com, owed)
	}
}
