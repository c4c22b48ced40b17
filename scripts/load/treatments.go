package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// loadTreatments makes sure the catalog lists at least n treatments, adding
// the missing ones through the admin API as an operator would: copies of
// the seeded treatments (same clinic and plan, so each is valid), each with
// an id and names of its own (l<n>-<seed id>). A treatment that exists
// already (409) is left as it is, so a second run adds nothing. They stay
// in make run's catalog; `rm -rf .data` starts afresh.
func loadTreatments(ctx context.Context, a *api, seedFile string, n, workers int) (added int, took time.Duration, err error) {
	var seed struct {
		Treatments []map[string]any `json:"treatments"`
	}
	b, err := os.ReadFile(seedFile)
	if err != nil {
		return 0, 0, err
	}
	if err := json.Unmarshal(b, &seed); err != nil {
		return 0, 0, fmt.Errorf("%s: %w", seedFile, err)
	}
	have, err := countTreatments(ctx, a)
	if err != nil {
		return 0, 0, err
	}
	missing := n - have
	if missing <= 0 {
		return 0, 0, nil
	}
	admin, err := a.token(ctx, "admin", "load-admin", "")
	if err != nil {
		return 0, 0, err
	}
	start := time.Now()
	jobs := make(chan int)
	var created atomic.Int64
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range jobs {
				doc := copyTreatment(seed.Treatments[i%len(seed.Treatments)], i)
				status, err := a.call(ctx, "POST", "/v1/admin/treatments", admin, doc, nil, nil)
				switch {
				case err == nil:
					created.Add(1)
				case status == http.StatusConflict:
				default:
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			}
		})
	}
	for i := range missing {
		if ctx.Err() != nil {
			break
		}
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	return int(created.Load()), time.Since(start), firstErr
}

// copyTreatment is the seed treatment t as load treatment i.
func copyTreatment(t map[string]any, i int) map[string]any {
	doc := make(map[string]any, len(t))
	for k, v := range t {
		doc[k] = v
	}
	// Ids are slugs of at most 48 characters: "l00042-" and as much of
	// the seed's id as fits.
	id := fmt.Sprintf("l%05d-%s", i, t["id"])
	if len(id) > 48 {
		id = strings.TrimRight(id[:48], "-")
	}
	doc["id"] = id
	if names, ok := t["names"].(map[string]any); ok {
		renamed := make(map[string]any, len(names))
		for lang, name := range names {
			renamed[lang] = fmt.Sprintf("%s #%d", name, i)
		}
		doc["names"] = renamed
	}
	return doc
}

// waitForTreatments waits until the catalog's search (its in-memory index,
// which follows the database) lists at least n treatments, and returns how
// many it lists: an earlier run's treatments stay, so it may be more.
func waitForTreatments(ctx context.Context, a *api, n int) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for {
		count, err := countTreatments(ctx, a)
		if err != nil {
			return 0, err
		}
		if count >= n {
			return count, nil
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("the catalog lists %d treatments, want %d: %w", count, n, ctx.Err())
		case <-time.After(time.Second):
		}
	}
}

// countTreatments pages through the catalog's search, 100 at a time.
func countTreatments(ctx context.Context, a *api) (int, error) {
	count, cursor := 0, ""
	for {
		var page struct {
			Items      []json.RawMessage `json:"items"`
			NextCursor string            `json:"next_cursor"`
		}
		if _, err := a.call(ctx, "GET", "/v1/treatments?limit=100&cursor="+url.QueryEscape(cursor), "", nil, nil, &page); err != nil {
			return 0, fmt.Errorf("counting treatments: %w", err)
		}
		count += len(page.Items)
		if page.NextCursor == "" {
			return count, nil
		}
		cursor = page.NextCursor
	}
}
