package main

import (
	"context"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// searches are a mix of the filters the patients' app sends.
var searches = []string{
	"condition=stroke", "condition=stroke&city=tokyo", "city=osaka", "cell_source=adipose", "condition=knee_osteoarthritis",
	"route=iv&bookable=true", "q=msc", "min_price=1000000&max_price=5000000&price_currency=JPY", "language=en", "",
}

// searchResult is the catalog search load's outcome.
type searchResult struct {
	Clients       int           `json:"clients"`
	Requests      int64         `json:"requests"`
	Errors        int64         `json:"errors"`
	PerSecond     float64       `json:"requests_per_second"`
	P50           time.Duration `json:"p50"`
	P99           time.Duration `json:"p99"`
	BytesPerReply float64       `json:"bytes_per_answer"`
	Compressed    bool          `json:"compressed"`
	Treatments    int           `json:"treatments,omitempty"`
}

// searchLoad runs clients searching the catalog through the gateway for d,
// each as its own address, asking for gzip as browsers do.
func searchLoad(ctx context.Context, gateway string, clients int, d time.Duration) searchResult {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	tr := &http.Transport{MaxIdleConnsPerHost: clients * 2, DisableCompression: true}
	var n, errs, bytes atomic.Int64
	var compressed atomic.Bool
	var mu sync.Mutex
	var took []time.Duration
	var wg sync.WaitGroup
	start := time.Now()
	for c := range clients {
		wg.Go(func() {
			var mine []time.Duration
			for i := 0; ctx.Err() == nil; i++ {
				req, _ := http.NewRequestWithContext(ctx, "GET", gateway+"/v1/treatments?"+searches[(c+i)%len(searches)], nil)
				req.Header.Set("Accept-Encoding", "gzip")
				req.Header.Set("X-Forwarded-For", "10.200.0."+itoa(c+1))
				t0 := time.Now()
				resp, err := tr.RoundTrip(req)
				if err != nil {
					if ctx.Err() == nil {
						errs.Add(1)
					}
					continue
				}
				b, _ := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					errs.Add(1)
					continue
				}
				mine = append(mine, time.Since(t0))
				n.Add(1)
				bytes.Add(b)
				if resp.Header.Get("Content-Encoding") == "gzip" {
					compressed.Store(true)
				}
			}
			mu.Lock()
			took = append(took, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	p := percentilesOf(took)
	res := searchResult{Clients: clients, Requests: n.Load(), Errors: errs.Load(), PerSecond: float64(n.Load()) / elapsed.Seconds(),
		P50: p.P50, P99: p.P99, Compressed: compressed.Load()}
	if n.Load() > 0 {
		res.BytesPerReply = float64(bytes.Load()) / float64(n.Load())
	}
	return res
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}
