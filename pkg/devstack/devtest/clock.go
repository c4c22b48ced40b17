package devtest

import (
	"sync"
	"time"
)

// Clock is a service clock for tests (servicehost.Deps.Now): real time plus
// an offset the test moves forward, to bring due what is scheduled hours or
// days ahead (a quote's expiry, a webhook retry) without waiting.
type Clock struct {
	mu     sync.Mutex
	offset time.Duration
}

// Now is real time plus the offset.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}
