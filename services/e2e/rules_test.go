package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

const (
	exosomeID = "ginza-exosome-parkinsons"
	trialID   = "kyoto-univ-ips-dopaminergic-parkinsons-trial"
)

func (p *platform) quote(t *testing.T, body map[string]any) response {
	t.Helper()
	var q response
	eventually(t, "quoting to answer", func() bool {
		q = p.call(t, "POST", "/v1/quotes", body, nil)
		return q.Status != 422 || !strings.Contains(string(q.Raw), "in the catalog")
	})
	return q
}

func (p *platform) book(t *testing.T, quoteID any) response {
	t.Helper()
	return p.call(t, "POST", "/v1/bookings", map[string]any{"quote_id": quoteID}, map[string]string{"Idempotency-Key": uuid.NewString()})
}

func problemType(r response) string {
	s := fmt.Sprint(r.Body["type"])
	return s[strings.LastIndex(s, "/")+1:]
}

func admin() map[string]string { return map[string]string{"Authorization": "Bearer " + adminToken} }

func TestCatalogAndQuotingRulesThroughTheGateway(t *testing.T) {
	p := startPlatform(t)
	base := map[string]any{"treatment_id": treatmentID, "dose_cells": dose, "currency": "KRW", "patient": patient}
	with := func(extra map[string]any) map[string]any {
		out := map[string]any{}
		for k, v := range base {
			out[k] = v
		}
		for k, v := range extra {
			out[k] = v
		}
		return out
	}

	t.Run("search, languages and the country comparison", func(t *testing.T) {
		r := p.mustCall(t, 200, "GET", "/v1/treatments?condition=parkinsons&lang=ko&limit=2", nil, nil)
		items := list(r.Body["items"])
		must(t, len(items) == 2 && r.Body["next_cursor"] != nil, fmt.Sprintf("first page: %s", r.Raw))
		first := obj(items[0])
		must(t, first["language"] == "ko" && list(first["conditions"])[0] == "parkinsons" && obj(first["condition_names"])["parkinsons"] == "파킨슨병", "Korean names")
		next := p.mustCall(t, 200, "GET", fmt.Sprint("/v1/treatments?condition=parkinsons&lang=ko&limit=2&cursor=", r.Body["next_cursor"]), nil, nil)
		must(t, len(list(next.Body["items"])) > 0 && obj(list(next.Body["items"])[0])["id"] != first["id"], "second page continues")

		ja := p.mustCall(t, 200, "GET", "/v1/treatments/"+treatmentID, nil, map[string]string{"Accept-Language": "ja-JP,en;q=0.5"})
		must(t, ja.Body["language"] == "ja" && !strings.Contains(fmt.Sprint(ja.Body["name"]), "Adipose"), "Japanese via Accept-Language")

		trials := p.mustCall(t, 200, "GET", "/v1/treatments?bookable=false&condition=parkinsons", nil, nil)
		var trial map[string]any
		for _, it := range list(trials.Body["items"]) {
			if obj(it)["id"] == trialID {
				trial = obj(it)
			}
		}
		must(t, trial != nil && obj(trial["trial"])["institution"] != "" && obj(trial["plan"])["risk_class"] == "I", "trial listed, class I")

		// $10,000 – $20,000, shown in dollars: every item has a dose inside.
		priced := p.mustCall(t, 200, "GET", "/v1/treatments?price_currency=USD&min_price=1000000&max_price=2000000&limit=100", nil, nil)
		must(t, len(list(priced.Body["items"])) > 0, "some treatments cost $10k–$20k")
		for _, it := range list(priced.Body["items"]) {
			from, c := money(obj(it)["display_price_from"])
			must(t, c == "USD" && from <= 2_000_000, fmt.Sprintf("%v from %d %s", obj(it)["id"], from, c))
		}
		text := p.mustCall(t, 200, "GET", "/v1/treatments?q=脊髄損傷&bookable=true", nil, nil)
		for _, it := range list(text.Body["items"]) {
			must(t, obj(it)["condition"] == "spinal_cord_injury", fmt.Sprintf("%v matched 脊髄損傷", obj(it)["id"]))
		}
		must(t, len(list(text.Body["items"])) > 0, "Japanese full-text search")
		bad := p.mustCall(t, 422, "GET", "/v1/treatments?route=oral&price_currency=BTC&limit=1000", nil, nil)
		for _, f := range []string{"route", "price_currency", "limit"} {
			must(t, strings.Contains(string(bad.Raw), `"field":"`+f+`"`), "names "+f)
		}

		cmp := p.mustCall(t, 200, "GET", "/v1/conditions/stroke/price-comparison?currency=USD", nil, nil)
		countries := map[string]bool{}
		for _, c := range list(cmp.Body["countries"]) {
			countries[fmt.Sprint(obj(c)["country"])] = true
		}
		must(t, countries["JP"] && countries["US"] && countries["MX"] && countries["TR"], fmt.Sprintf("stroke comparison %s", cmp.Raw))
		jp := obj(list(cmp.Body["countries"])[0])
		lo, _ := money(jp["min"])
		hi, _ := money(jp["max"])
		must(t, lo == 1_500_000 && hi == 4_500_000, "Japan $15,000 – $45,000")
		p.mustCall(t, 404, "GET", "/v1/conditions/baldness/price-comparison", nil, nil)
	})

	t.Run("an ineligible screening is quoted but cannot be booked", func(t *testing.T) {
		q := p.quote(t, with(map[string]any{"screening": map[string]any{"diagnosis_confirmed": true, "cancer_free_years": 2,
			"severe_organ_disease": false, "can_travel": true}}))
		must(t, q.Status == 201 && q.Body["status"] == "ineligible" && q.Body["deposit"] == nil && q.Body["balance"] == nil,
			fmt.Sprintf("ineligible quote: %s", q.Raw))
		reasons := list(obj(q.Body["eligibility"])["reasons"])
		must(t, len(reasons) == 1 && obj(reasons[0])["code"] == "recent_cancer", "reason given")
		r := p.book(t, q.Body["id"])
		must(t, r.Status == 422 && problemType(r) == "quote-ineligible", fmt.Sprintf("booking: %d %s", r.Status, r.Raw))
	})

	t.Run("a quote needing review is booked only after the clinic's revision", func(t *testing.T) {
		v1 := p.quote(t, base) // no screening: a clinician must look
		must(t, v1.Status == 201 && obj(v1.Body["eligibility"])["status"] == "needs_review", fmt.Sprintf("v1 %s", v1.Raw))
		r := p.book(t, v1.Body["id"])
		must(t, r.Status == 409 && problemType(r) == "quote-needs-review", fmt.Sprintf("booking v1: %d %s", r.Status, r.Raw))

		v2 := p.mustCall(t, 201, "POST", fmt.Sprint("/v1/clinic/quotes/", v1.Body["id"], "/revisions"), map[string]any{
			"dose_cells": 200_000_000, "note": "MRI reviewed; higher dose advised",
			"eligibility": map[string]any{"status": "eligible", "reasons": []any{map[string]any{"code": "clinician_review", "outcome": "eligible", "message": "Records reviewed"}}},
		}, nil)
		must(t, v2.Body["version"] == json.Number("2") && v2.Body["supersedes"] == v1.Body["id"] && obj(v2.Body["eligibility"])["status"] == "eligible", fmt.Sprintf("v2 %s", v2.Raw))
		t1, _ := money(v1.Body["total"])
		t2, _ := money(v2.Body["total"])
		must(t, t2 > t1, "the higher dose costs more")
		old := p.book(t, v1.Body["id"])
		must(t, old.Status == 409 && problemType(old) == "quote-superseded" && strings.Contains(fmt.Sprint(old.Body["detail"]), fmt.Sprint(v2.Body["id"])),
			fmt.Sprintf("booking v1 after revision: %d %s", old.Status, old.Raw))
		must(t, p.mustCall(t, 200, "GET", fmt.Sprint("/v1/quotes/", v1.Body["id"]), nil, nil).Body["status"] == "superseded", "v1 superseded")
		booked := p.book(t, v2.Body["id"])
		must(t, booked.Status == 201, fmt.Sprintf("booking v2: %d %s", booked.Status, booked.Raw))
		dep, _ := money(obj(booked.Body["deposit"])["amount"])
		want, _ := money(v2.Body["deposit"])
		must(t, dep == want, "deposit of v2")
	})

	t.Run("a trial is never quoted", func(t *testing.T) {
		r := p.quote(t, map[string]any{"treatment_id": trialID, "dose_cells": 1, "currency": "JPY", "patient": patient, "screening": fit})
		must(t, r.Status == 422 && problemType(r) == "treatment-not-bookable", fmt.Sprintf("trial quote: %d %s", r.Status, r.Raw))
	})

	t.Run("a product with no culture stage is paid in full up front and needs no harvest", func(t *testing.T) {
		tr := p.mustCall(t, 200, "GET", "/v1/treatments/"+exosomeID, nil, nil).Body
		doseCells := num(obj(list(tr["dose_options"])[0])["cells"])
		q := p.quote(t, map[string]any{"treatment_id": exosomeID, "dose_cells": doseCells, "currency": "JPY", "patient": patient, "screening": fit})
		total, _ := money(q.Body["total"])
		deposit, _ := money(q.Body["deposit"])
		balance, _ := money(q.Body["balance"])
		must(t, q.Status == 201 && deposit == total && balance == 0 && q.Body["requires_harvest"] == false, fmt.Sprintf("full up front: %s", q.Raw))
		created := p.book(t, q.Body["id"])
		must(t, created.Status == 201, fmt.Sprintf("booked: %s", created.Raw))
		id := fmt.Sprint(created.Body["id"])
		payload, sig := stripeEvent(t, "evt_exo_"+id, "payment_intent.succeeded", map[string]any{"id": obj(created.Body["deposit"])["payment_intent_id"],
			"object": "payment_intent", "amount": deposit, "amount_received": deposit, "currency": "jpy", "status": "succeeded", "payment_method": "pm_exo"})
		p.webhook(t, payload, sig)
		p.waitForStatus(t, id, "confirmed")
		p.mustCall(t, 409, "POST", "/v1/clinic/bookings/"+id+"/harvest", nil, nil)
		ready := p.mustCall(t, 200, "POST", "/v1/clinic/bookings/"+id+"/cells-ready",
			map[string]any{"cell_count": doseCells, "viability_pct": 100, "sterility": "pass", "endotoxin": "pass"}, nil)
		must(t, ready.Body["status"] == "ready_for_administration", fmt.Sprintf("straight to administration: %s", ready.Raw))
		fin := p.mustCall(t, 200, "GET", "/v1/finance/bookings/"+id, nil, nil).Body
		must(t, obj(fin["balance"])["status"] == "not_required" && fin["settled"] == true, fmt.Sprintf("finance %v", fin))
		_, charged := findRequest(p.stripe.Requests(), "POST", "/v1/payment_intents", "booking:"+id+":balance")
		must(t, !charged, "no balance charge")
	})

	t.Run("a quote past its validity cannot be booked", func(t *testing.T) {
		q := p.quote(t, with(map[string]any{"screening": fit}))
		must(t, q.Status == 201, string(q.Raw))
		validUntil, _ := time.Parse(time.RFC3339, fmt.Sprint(q.Body["valid_until"]))
		p.clock.Advance(time.Until(validUntil) + time.Minute)
		defer p.clock.Advance(-(time.Until(validUntil) + time.Minute))
		must(t, p.mustCall(t, 200, "GET", fmt.Sprint("/v1/quotes/", q.Body["id"]), nil, nil).Body["status"] == "expired", "reads as expired")
		r := p.book(t, q.Body["id"])
		must(t, r.Status == 409 && problemType(r) == "quote-expired", fmt.Sprintf("booking an expired quote: %d %s", r.Status, r.Raw))
	})

	t.Run("suspending a plan stops bookings at once and withdraws open quotes", func(t *testing.T) {
		tr := p.mustCall(t, 200, "GET", "/v1/treatments/"+treatmentID, nil, nil).Body
		plan := fmt.Sprint(tr["plan_number"])
		open := p.quote(t, with(map[string]any{"screening": fit}))
		must(t, open.Status == 201, string(open.Raw))

		p.mustCall(t, 401, "PATCH", "/v1/admin/plans/"+plan, map[string]any{"status": "suspended"}, nil)
		bad := p.mustCall(t, 422, "PATCH", "/v1/admin/plans/"+plan, map[string]any{"status": "paused"}, admin())
		must(t, strings.Contains(string(bad.Raw), `"field":"status"`), "bad status named")
		p.mustCall(t, 200, "PATCH", "/v1/admin/plans/"+plan, map[string]any{"status": "suspended"}, admin())
		defer p.mustCall(t, 200, "PATCH", "/v1/admin/plans/"+plan, map[string]any{"status": "active"}, admin())

		// At once: the catalog says so, and booking asks the catalog.
		now := p.mustCall(t, 200, "GET", "/v1/treatments/"+treatmentID, nil, nil).Body
		must(t, now["bookable"] == false && obj(now["plan"])["status"] == "suspended", "unbookable at once")
		r := p.book(t, open.Body["id"])
		must(t, r.Status == 409 && (problemType(r) == "treatment-not-bookable" || problemType(r) == "quote-withdrawn"),
			fmt.Sprintf("booking under a suspended plan: %d %s", r.Status, r.Raw))
		// Within a second, quoting follows: new quotes refused, open ones withdrawn.
		eventually(t, "quoting to refuse new quotes", func() bool {
			q := p.call(t, "POST", "/v1/quotes", with(map[string]any{"screening": fit}), nil)
			return q.Status == 422 && problemType(q) == "treatment-not-bookable"
		})
		eventually(t, "the open quote to be withdrawn", func() bool {
			return p.call(t, "GET", fmt.Sprint("/v1/quotes/", open.Body["id"]), nil, nil).Body["status"] == "withdrawn"
		})
		r = p.book(t, open.Body["id"])
		must(t, r.Status == 409 && problemType(r) == "quote-withdrawn", fmt.Sprintf("booking a withdrawn quote: %d %s", r.Status, r.Raw))
	})

	t.Run("operators create clinics, plans and treatments with validation", func(t *testing.T) {
		clinic := map[string]any{"id": "osaka-test-clinic", "names": map[string]any{"en": "Osaka Test Clinic", "ja": "大阪テストクリニック"},
			"kind": "clinic", "city": "osaka", "mhlw_registration": "27-1234567", "languages": []any{"ja", "en"},
			"deposit_policy": map[string]any{"covers": []any{"consultation", "harvest", "cell_culture", "quality_testing"}, "full_without_culture": false},
			"extras":         []any{map[string]any{"code": "hotel", "price": 20000, "unit": "night", "taxable": true}}}
		p.mustCall(t, 401, "POST", "/v1/admin/clinics", clinic, nil)
		clinic["city"] = "nagoya"
		bad := p.mustCall(t, 422, "POST", "/v1/admin/clinics", clinic, admin())
		must(t, strings.Contains(string(bad.Raw), `"field":"city"`), "city named")
		clinic["city"] = "osaka"
		p.mustCall(t, 201, "POST", "/v1/admin/clinics", clinic, admin())
		p.mustCall(t, 409, "POST", "/v1/admin/clinics", clinic, admin())
		p.mustCall(t, 201, "POST", "/v1/admin/plans", map[string]any{"number": "PB5269999", "clinic_id": "osaka-test-clinic", "risk_class": "II",
			"therapy": "Autologous adipose MSC, intra-articular, knee osteoarthritis", "committee": "Osaka Certified Committee No. 1",
			"cpc": map[string]any{"name": "Osaka Cell Lab", "in_house": false}, "valid_from": "2026-01-01", "valid_until": "2028-12-31", "status": "active"}, admin())
		treatment := map[string]any{"id": "osaka-test-knee", "clinic_id": "osaka-test-clinic", "plan_number": "PB5269999",
			"names": map[string]any{"en": "Adipose MSC for knee osteoarthritis"}, "descriptions": map[string]any{"en": "One injection per knee."},
			"conditions": []any{"knee_osteoarthritis"}, "cell_type": "msc", "cell_source": "adipose", "autologous": true,
			"routes": []any{"intra_articular"}, "sessions": 1, "culture_days": map[string]any{"min": 21, "max": 28}, "visits": 2,
			"typical_stay_days": 2, "follow_up_months": []any{1, 3, 6}, "included": []any{"Certificate of analysis"},
			"prices":       map[string]any{"consultation": 50000, "harvest": 200000, "quality_testing": 50000, "administration_per_session": 300000},
			"dose_options": []any{map[string]any{"cells": 50000000, "culture": 700000}},
			"eligibility":  map[string]any{"requires_confirmed_diagnosis": true, "min_cancer_free_years": 5, "organ_disease": "review", "excludes_severed_cord": false, "injury_window": nil},
			"trial":        nil}
		p.mustCall(t, 201, "POST", "/v1/admin/treatments", treatment, admin())
		// Quoting follows within a second.
		eventually(t, "quoting to quote the new treatment", func() bool {
			q := p.call(t, "POST", "/v1/quotes", map[string]any{"treatment_id": "osaka-test-knee", "dose_cells": 50000000, "currency": "JPY",
				"patient": patient, "screening": fit}, nil)
			if q.Status != 201 {
				return false // quoting has not seen the treatment yet
			}
			total, _ := money(q.Body["total"])
			return total == 1_430_000 // (50k + 200k + 700k + 50k + 300k) × 1.1
		})
		// A price change reaches quoting too.
		p.mustCall(t, 200, "PATCH", "/v1/admin/treatments/osaka-test-knee", map[string]any{"prices": map[string]any{
			"consultation": 50000, "harvest": 200000, "quality_testing": 50000, "administration_per_session": 400000}}, admin())
		eventually(t, "quoting to use the new price", func() bool {
			q := p.call(t, "POST", "/v1/quotes", map[string]any{"treatment_id": "osaka-test-knee", "dose_cells": 50000000, "currency": "JPY",
				"patient": patient, "screening": fit}, nil)
			if q.Status != 201 {
				return false
			}
			total, _ := money(q.Body["total"])
			return total == 1_540_000
		})
		badPatch := p.mustCall(t, 422, "PATCH", "/v1/admin/treatments/osaka-test-knee", map[string]any{"routes": []any{"oral"}, "sessions": 0}, admin())
		must(t, strings.Contains(string(badPatch.Raw), `"field":"routes"`) && strings.Contains(string(badPatch.Raw), `"field":"sessions"`), string(badPatch.Raw))
		unknown := p.mustCall(t, 400, "PATCH", "/v1/admin/treatments/osaka-test-knee", map[string]any{"colour": "blue"}, admin())
		must(t, strings.Contains(string(unknown.Raw), `"field":"colour"`), string(unknown.Raw))
	})
}
