package httpkit

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	kithttp "github.com/go-kit/kit/transport/http"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/trace"

	"github.com/saisei-health/platform/pkg/telemetry"
)

// Router is a net/http ServeMux whose routes name their spans after the
// route pattern ("GET /v1/bookings/{id}"), not the raw path.
type Router struct{ mux *http.ServeMux }

// NewRouter returns an empty Router with /healthz.
func NewRouter() *Router {
	rt := &Router{mux: http.NewServeMux()}
	rt.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_ = WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	return rt
}

// Handle registers h for pattern ("METHOD /path/{param}").
func (rt *Router) Handle(pattern string, h http.Handler) {
	rt.mux.Handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		trace.SpanFromContext(r.Context()).SetName(pattern)
		h.ServeHTTP(w, r)
	}))
}

// ServeHTTP implements http.Handler. Requests no route matches get the
// mux's verdict (404, or 405 with Allow) as problem+json.
func (rt *Router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, pattern := rt.mux.Handler(r); pattern != "" {
		rt.mux.ServeHTTP(w, r)
		return
	}
	verdict := &verdictWriter{header: http.Header{}, code: http.StatusNotFound}
	rt.mux.ServeHTTP(verdict, r)
	if verdict.code == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", verdict.header.Get("Allow"))
		WriteProblem(w, ProblemMethodNotAllowed.New(r.Method+" "+r.URL.Path))
		return
	}
	WriteProblem(w, ProblemNoRoute.New(r.Method+" "+r.URL.Path))
}

// verdictWriter records what the mux would have answered.
type verdictWriter struct {
	header http.Header
	code   int
}

func (v *verdictWriter) Header() http.Header         { return v.header }
func (v *verdictWriter) Write(b []byte) (int, error) { return len(b), nil }
func (v *verdictWriter) WriteHeader(code int)        { v.code = code }

// ServerOptions are the go-kit options every endpoint uses: problem+json
// errors and logged failures.
func ServerOptions(log *slog.Logger, table ProblemTable) []kithttp.ServerOption {
	return []kithttp.ServerOption{
		kithttp.ServerErrorEncoder(ErrorEncoder(log, table)),
	}
}

// Instrument wraps h with tracing (continuing an incoming traceparent),
// access logging and panic recovery.
func Instrument(h http.Handler, service string, tp trace.TracerProvider, log *slog.Logger) http.Handler {
	return otelhttp.NewHandler(recoverer(accessLog(h, log), log), service,
		otelhttp.WithTracerProvider(tp), otelhttp.WithPropagators(telemetry.Propagator),
		otelhttp.WithFilter(func(r *http.Request) bool { return r.URL.Path != "/healthz" }))
}

// InstrumentPublic is Instrument for the platform's edge, the gateway: a
// request from outside starts a trace of its own, which links the caller's
// traceparent instead of continuing it, and inbound baggage is dropped, so
// nobody outside can join a patient's trace or put values into the
// services' context.
func InstrumentPublic(h http.Handler, service string, tp trace.TracerProvider, log *slog.Logger) http.Handler {
	inner := otelhttp.NewHandler(recoverer(accessLog(h, log), log), service,
		otelhttp.WithTracerProvider(tp),
		otelhttp.WithPropagators(telemetry.Propagator),
		otelhttp.WithPublicEndpointFn(func(*http.Request) bool { return true }),
		otelhttp.WithFilter(func(r *http.Request) bool { return r.URL.Path != "/healthz" }))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Header.Del("Baggage")
		inner.ServeHTTP(w, r)
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) { s.status = code; s.ResponseWriter.WriteHeader(code) }

func accessLog(h http.Handler, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(rec, r)
		if r.URL.Path == "/healthz" {
			return
		}
		level := slog.LevelInfo
		if rec.status >= 500 {
			level = slog.LevelError
		}
		log.Log(r.Context(), level, "http", "method", r.Method, "path", r.URL.Path, "status", rec.status,
			"duration_ms", time.Since(start).Milliseconds())
	})
}

func recoverer(h http.Handler, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				log.ErrorContext(r.Context(), "panic in handler", "panic", p)
				WriteProblem(w, ProblemInternal.New(""))
			}
		}()
		h.ServeHTTP(w, r)
	})
}

// Serve listens on addr until ctx is done, then stops accepting and lets
// in-flight requests finish (up to 10 s).
func Serve(ctx context.Context, addr string, h http.Handler, log *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("listening", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
