package devtest

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/saisei-health/platform/pkg/servicehost"
	"github.com/saisei-health/platform/pkg/telemetry"
)

// Deps returns a service's logger and tracer provider for a test: logs go to
// t.Log (shown when the test fails or with -v) and spans to spans, a shared
// in-memory exporter the test can assert on (nil for a private one).
func Deps(t testing.TB, service string, spans *tracetest.InMemoryExporter) servicehost.Deps {
	t.Helper()
	if spans == nil {
		spans = tracetest.NewInMemoryExporter()
	}
	tp, err := telemetry.NewProvider(context.Background(), service, telemetry.WithSpanProcessor(sdktrace.NewSimpleSpanProcessor(spans)))
	if err != nil {
		t.Fatal(err)
	}
	w := &testWriter{t: t}
	// Registered first, so it runs last: after every service has stopped.
	t.Cleanup(w.close)
	return servicehost.Deps{Log: telemetry.NewLogger(service, w), TracerProvider: tp}
}

// testWriter forwards log lines to t.Log until the test is over; a goroutine
// logging after that must not make the test binary panic.
type testWriter struct {
	t      testing.TB
	mu     sync.Mutex
	closed bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *testWriter) close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
}

// TestLogger is a logger that writes to t.Log.
func TestLogger(t testing.TB) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(w.close)
	return slog.New(slog.NewTextHandler(w, nil))
}
