package servicehost

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Profiles are served on a loopback debug address, and refused on any
// other: they expose the code's internals.
func TestProfilesAreServedOnLoopbackOnly(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	go serveDebug(ctx, addr, false, log)
	var body string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get("http://" + addr + "/debug/pprof/")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
			break
		}
	}
	if !strings.Contains(body, "goroutine") || !strings.Contains(body, "heap") {
		t.Fatalf("the profile index: %q", body)
	}

	done := make(chan struct{})
	go func() { serveDebug(ctx, "0.0.0.0:0", false, log); close(done) }()
	select {
	case <-done: // refused at once
	case <-time.After(2 * time.Second):
		t.Fatal("profiles were served on every interface")
	}
}
