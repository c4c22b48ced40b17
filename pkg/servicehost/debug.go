package servicehost

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// serveDebug serves Go's profiles (net/http/pprof: CPU, heap, goroutines,
// mutex, block, execution trace) on addr until ctx ends, so the load test
// and a person can see where a service spends its time. Profiles reveal
// the code's internals and can be heavy: addr must be loopback or a
// private admin network, never the public listener; an address that is
// not loopback is refused unless allowPublic.
func serveDebug(ctx context.Context, addr string, allowPublic bool, log *slog.Logger) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		log.Error("DEBUG_ADDR is not host:port; profiles are off", "addr", addr, "err", err)
		return
	}
	if ip := net.ParseIP(host); !allowPublic && (ip == nil || !ip.IsLoopback()) {
		log.Error("DEBUG_ADDR must be a loopback address (127.0.0.1:port); profiles are off", "addr", addr)
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Error("debug listener", "addr", addr, "err", err)
		return
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	log.Info("profiles served", "addr", "http://"+ln.Addr().String()+"/debug/pprof/")
	_ = srv.Serve(ln)
}
