package main

import (
	"compress/gzip"
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// span is what the trace checks need of one exported span.
type span struct {
	Trace, ID, Parent string
	Service, Name     string
	BookingID         string
	End               time.Time
}

// traceSink is an OTLP/HTTP receiver: every service exports its spans to
// it, as it would to a collector.
type traceSink struct {
	URL    string
	server *http.Server

	mu    sync.Mutex
	spans []span
}

func startTraceSink() (*traceSink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	t := &traceSink{URL: "http://" + ln.Addr().String()}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", t.receive)
	mux.HandleFunc("POST /v1/metrics", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-protobuf")
	})
	t.server = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = t.server.Serve(ln) }()
	return t, nil
}

func (t *traceSink) receive(w http.ResponseWriter, r *http.Request) {
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		gz, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = gz
	}
	raw, err := io.ReadAll(io.LimitReader(body, 64<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var req collectortrace.ExportTraceServiceRequest
	if err := proto.Unmarshal(raw, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var got []span
	for _, rs := range req.GetResourceSpans() {
		service := ""
		for _, a := range rs.GetResource().GetAttributes() {
			if a.GetKey() == "service.name" {
				service = a.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				sp := span{Trace: hex.EncodeToString(s.GetTraceId()), ID: hex.EncodeToString(s.GetSpanId()),
					Parent: hex.EncodeToString(s.GetParentSpanId()), Service: service, Name: s.GetName(),
					End: time.Unix(0, int64(s.GetEndTimeUnixNano()))}
				for _, a := range s.GetAttributes() {
					if a.GetKey() == "booking.id" {
						sp.BookingID = a.GetValue().GetStringValue()
					}
				}
				got = append(got, sp)
			}
		}
	}
	t.mu.Lock()
	t.spans = append(t.spans, got...)
	t.mu.Unlock()
	b, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(b)
}

func (t *traceSink) all() []span {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]span(nil), t.spans...)
}

func (t *traceSink) close() { _ = t.server.Close() }

// traces checks that each booking is one trace: the spans that act on the
// booking after its creation (Stripe's webhooks, the clinic's reports, the
// notices and emails) continue the trace its creation began, as stored
// with the booking; and that none of the trace's spans is an orphan whose
// parent never arrived. A process killed with spans not yet exported loses
// them, so orphans are held to zero for the bookings no kill overlapped and
// reported as a rate for the others.
func (c *checker) traces(ctx context.Context) error {
	if c.spans == nil {
		return nil
	}
	one := c.add("one trace per booking (every span acting on it continues its trace)")
	orphans := c.add("no orphan span in a booking's trace (bookings no kill overlapped)")
	killed := c.add("orphan spans in the traces of bookings a kill -9 overlapped (spans lost with the process)")
	killed.Exception = true
	spans := c.spans.all()
	byTrace := map[string][]span{}
	ids := map[string]bool{}
	for _, s := range spans {
		byTrace[s.Trace] = append(byTrace[s.Trace], s)
		ids[s.Trace+"/"+s.ID] = true
	}
	byBooking := map[string][]span{}
	for _, s := range spans {
		if s.BookingID != "" {
			byBooking[s.BookingID] = append(byBooking[s.BookingID], s)
		}
	}
	for _, j := range c.journeys {
		if j.BookingID == "" || j.Err != nil {
			continue
		}
		var stored []byte
		if err := c.db.QueryRow(ctx, `SELECT trace FROM booking.bookings WHERE id = $1`, j.BookingID).Scan(&stored); err != nil {
			return err
		}
		var carrier map[string]string
		_ = json.Unmarshal(stored, &carrier)
		parts := strings.Split(carrier["traceparent"], "-")
		one.Checked++
		if len(parts) != 4 {
			one.fail("booking %s stored no trace (%s)", j.BookingID, stored)
			continue
		}
		trace := parts[1]
		for _, s := range byBooking[j.BookingID] {
			if continuesBooking(s) && s.Trace != trace {
				one.fail("booking %s: %s span %q is in trace %s, not the booking's %s", j.BookingID, s.Service, s.Name, s.Trace, trace)
			}
		}
		check := orphans
		if c.overlapsKill(j, byTrace[trace]) {
			check = killed
		}
		for _, s := range byTrace[trace] {
			check.Checked++
			if s.Parent != "" && !ids[s.Trace+"/"+s.Parent] {
				check.fail("booking %s: %s span %q has no parent %s in its trace", j.BookingID, s.Service, s.Name, s.Parent)
			}
		}
	}
	return nil
}

// continuesBooking: the spans that carry on the booking's trace; an HTTP
// request's own server span (its own short trace, linked) does not.
func continuesBooking(s span) bool {
	for _, prefix := range []string{"stripe ", "booking ", "smtp send ", "notice ", "consume ", "process "} {
		if strings.HasPrefix(s.Name, prefix) {
			return true
		}
	}
	return false
}

// exportDelay bounds how long a span waits in its process before it is
// exported: the batch exporter's schedule (5 s) and a margin for the
// export itself.
const exportDelay = 6 * time.Second

// overlapsKill reports whether a process was killed while j's trace could
// still lose spans: from the journey's start until exportDelay after the
// last of its spans ended. The trace goes on after the journey's last
// answer (the events that answer caused, their notices and emails), and
// a span ended just before a kill is lost with its process.
func (c *checker) overlapsKill(j *journey, trace []span) bool {
	last := j.Finished
	for _, s := range trace {
		if s.End.After(last) {
			last = s.End
		}
	}
	for _, f := range c.faults {
		if !strings.HasPrefix(f.Kind, "kill") {
			continue
		}
		at := c.faultsBegin.Add(f.At)
		if !at.Before(j.Started) && !at.After(last.Add(exportDelay)) {
			return true
		}
	}
	return false
}
