// Command webhook-receiver is the smallest clinic system that receives
// Saisei's signed webhooks: it verifies each delivery with the Standard
// Webhooks library, ignores a webhook-id it has already processed, and
// answers 204 quickly. Run it, register http://127.0.0.1:8787/hooks under
// `make run`, and put the secret you get back in WEBHOOK_SECRET:
//
//	WEBHOOK_SECRET=whsec_… GOWORK=off go run . -addr 127.0.0.1:8787
//
// During a secret rotation, WEBHOOK_SECRET may hold both secrets, separated
// by a space: a delivery verified by either is accepted.
package main

import (
	"encoding/json"
	"flag"
	"io"
	"log"
	"net/http"
	"os"
	"strings"
	"sync"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// event is the body of every delivery.
type event struct {
	Type string `json:"type"`
	Data struct {
		NoticeID string `json:"notice_id"`
		Booking  struct {
			ID            string `json:"id"`
			TreatmentName string `json:"treatment_name"`
			Status        string `json:"status"`
			Patient       struct {
				Name string `json:"name"`
			} `json:"patient"`
		} `json:"booking"`
	} `json:"data"`
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8787", "listen address")
	flag.Parse()
	var verifiers []*standardwebhooks.Webhook
	for _, s := range strings.Fields(os.Getenv("WEBHOOK_SECRET")) {
		wh, err := standardwebhooks.NewWebhook(s)
		if err != nil {
			log.Fatalf("WEBHOOK_SECRET: %v", err)
		}
		verifiers = append(verifiers, wh)
	}
	if len(verifiers) == 0 {
		log.Fatal("set WEBHOOK_SECRET to the whsec_… secret the registration returned")
	}

	// A real system records processed ids in its database, in the same
	// transaction as what it does with the event.
	var mu sync.Mutex
	seen := map[string]bool{}

	http.HandleFunc("POST /hooks", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "unreadable body", http.StatusBadRequest)
			return
		}
		verified := false
		for _, wh := range verifiers {
			if wh.Verify(body, r.Header) == nil { // signature and timestamp (±5 min)
				verified = true
				break
			}
		}
		if !verified {
			http.Error(w, "bad signature", http.StatusBadRequest)
			return
		}
		id := r.Header.Get("webhook-id")
		mu.Lock()
		dup := seen[id]
		seen[id] = true
		mu.Unlock()
		if dup {
			w.WriteHeader(http.StatusNoContent) // already processed: acknowledge again
			return
		}
		var ev event
		if err := json.Unmarshal(body, &ev); err != nil {
			http.Error(w, "unexpected body", http.StatusBadRequest)
			return
		}
		log.Printf("%s %s: booking %s (%s) for %s, now %s", id, ev.Type, ev.Data.Booking.ID, ev.Data.Booking.TreatmentName,
			ev.Data.Booking.Patient.Name, ev.Data.Booking.Status)
		w.WriteHeader(http.StatusNoContent)
	})
	log.Printf("receiving webhooks on http://%s/hooks", *addr)
	log.Fatal(http.ListenAndServe(*addr, nil))
}
