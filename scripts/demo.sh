#!/usr/bin/env bash
# The patient journey with curl against a running `make run`: quote, book,
# pay the deposit (a signed Stripe webhook), harvest, QC, the off-session
# balance (another webhook), administration, and the finance view.
# Needs only curl and openssl.
set -euo pipefail
API=${API:-http://localhost:8080}
SECRET=${STRIPE_WEBHOOK_SECRET:-whsec_local_dev}

# field NAME: the first "NAME": value in the JSON on stdin (flat strings/numbers).
field() { grep -o "\"$1\":[^,}]*" | head -1 | sed -e "s/\"$1\"://" -e 's/^"//' -e 's/"$//'; }
say() { printf '\n== %s\n' "$*"; }

# sign_and_send EVENT_JSON: posts a webhook signed as Stripe signs it:
# HMAC-SHA256 over "<timestamp>.<payload>" with the endpoint secret.
sign_and_send() {
  local payload=$1 t sig
  t=$(date +%s)
  sig=$(printf '%s.%s' "$t" "$payload" | openssl dgst -sha256 -hmac "$SECRET" | sed 's/^.* //')
  curl -sS -X POST "$API/v1/webhooks/stripe" -H "Stripe-Signature: t=$t,v1=$sig" \
    -H 'Content-Type: application/json' --data-binary "$payload"
  echo
}

# token ROLE SUBJECT [CLINIC]: a bearer token from make run's dev issuer,
# the local stand-in for logging in (POST /v1/dev/tokens exists only then).
token() {
  local body="{\"role\": \"$1\", \"subject\": \"$2\""
  [ -n "${3:-}" ] && body="$body, \"clinic_id\": \"$3\""
  curl -sS -X POST "$API/v1/dev/tokens" -H 'Content-Type: application/json' -d "$body}" | field token
}
PATIENT="Authorization: Bearer $(token patient patient-kim)"
CLINIC="Authorization: Bearer $(token clinic ginza-staff-1 tokyo-ginza-namiki-clinic)"
FINANCE="Authorization: Bearer $(token finance finance-1)"

say "Find stroke treatments in Tokyo, in Korean, priced in US dollars (no login needed)"
curl -sS "$API/v1/treatments?condition=stroke&city=tokyo&lang=ko&price_currency=USD&limit=2" | head -c 400; echo

say "Quote 100 million cells with 5 hotel nights, shown in US dollars, with the screening questionnaire"
QUOTE=$(curl -sS -X POST "$API/v1/quotes" -H "$PATIENT" -H 'Content-Type: application/json' -d '{
  "treatment_id": "ginza-adipose-msc-stroke-iv", "dose_cells": 100000000, "currency": "USD",
  "patient": {"name": "Kim Min-jun", "email": "minjun.kim@example.kr", "country": "KR", "language": "ko"},
  "extras": [{"code": "hotel", "nights": 5}],
  "screening": {"diagnosis_confirmed": true, "cancer_free_years": null, "severe_organ_disease": false, "can_travel": true}}')
echo "$QUOTE"
QUOTE_ID=$(echo "$QUOTE" | field id)

say "Book it (Idempotency-Key: a retry returns the same booking)"
BOOKING=$(curl -sS -X POST "$API/v1/bookings" -H "$PATIENT" -H 'Content-Type: application/json' \
  -H "Idempotency-Key: demo-$QUOTE_ID" -d "{\"quote_id\": \"$QUOTE_ID\"}")
echo "$BOOKING"
BOOKING_ID=$(echo "$BOOKING" | field id)
DEPOSIT_PI=$(echo "$BOOKING" | field payment_intent_id)
DEPOSIT=$(echo "$BOOKING" | grep -o '"deposit":{"payment_id":"[^"]*","amount":{"amount":[0-9]*' | grep -o '[0-9]*$')
[ -n "$BOOKING_ID" ] && [ -n "$DEPOSIT" ] || { echo "booking failed"; exit 1; }

say "Stripe: the deposit of ¥$DEPOSIT succeeded (card saved for the balance)"
sign_and_send "{\"id\":\"evt_demo_dep_$BOOKING_ID\",\"object\":\"event\",\"api_version\":\"2023-10-16\",\"created\":$(date +%s),\"type\":\"payment_intent.succeeded\",\"data\":{\"object\":{\"id\":\"$DEPOSIT_PI\",\"object\":\"payment_intent\",\"amount\":$DEPOSIT,\"amount_received\":$DEPOSIT,\"currency\":\"jpy\",\"status\":\"succeeded\",\"payment_method\":\"pm_demo_visa\"}}}"
sleep 1
curl -sS -H "$PATIENT" "$API/v1/bookings/$BOOKING_ID" | field status

say "Clinic: cells harvested, then cultured cells pass QC"
curl -sS -X POST -H "$CLINIC" "$API/v1/clinic/bookings/$BOOKING_ID/harvest" | field status
curl -sS -X POST -H "$CLINIC" "$API/v1/clinic/bookings/$BOOKING_ID/cells-ready" -H 'Content-Type: application/json' \
  -d '{"cell_count": 112000000, "viability_pct": 94.5, "sterility": "pass", "endotoxin": "pass"}' | field status
sleep 1

say "Payment charged the balance off-session; Stripe confirms it"
PAYMENTS=$(curl -sS -H "$PATIENT" "$API/v1/bookings/$BOOKING_ID")
BALANCE_PI=$(echo "$PAYMENTS" | grep -o '"stage":"balance","payment_intent_id":"[^"]*"' | sed 's/.*"payment_intent_id":"//; s/"$//')
BALANCE=$(echo "$PAYMENTS" | grep -o '"balance_due":{"amount":[0-9]*' | grep -o '[0-9]*$')
sign_and_send "{\"id\":\"evt_demo_bal_$BOOKING_ID\",\"object\":\"event\",\"api_version\":\"2023-10-16\",\"created\":$(date +%s),\"type\":\"payment_intent.succeeded\",\"data\":{\"object\":{\"id\":\"$BALANCE_PI\",\"object\":\"payment_intent\",\"amount\":$BALANCE,\"amount_received\":$BALANCE,\"currency\":\"jpy\",\"status\":\"succeeded\",\"payment_method\":\"pm_demo_visa\"}}}"
sleep 1
curl -sS -H "$PATIENT" "$API/v1/bookings/$BOOKING_ID" | field status

say "Clinic: cells administered"
curl -sS -X POST -H "$CLINIC" "$API/v1/clinic/bookings/$BOOKING_ID/administered" | field status

say "Finance: expected vs received"
curl -sS -H "$FINANCE" "$API/v1/finance/bookings/$BOOKING_ID"; echo

say "Emails the patient received"
curl -sS "http://127.0.0.1:8025/api/messages" | grep -o '"subject":"[^"]*"' || true
