package server_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/saisei-health/platform/pkg/bus"
)

func waitForStreamMessages(t *testing.T, js jetstream.JetStream, n int) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		s, err := js.Stream(ctx, bus.StreamCatalog)
		if err == nil {
			info, err := s.Info(ctx)
			if err == nil && info.State.Msgs == uint64(n) {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("catalog stream never held %d messages", n)
}
