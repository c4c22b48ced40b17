package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"

	"github.com/saisei-health/platform/pkg/devstack"
)

// logMux prefixes every line with its source and renders the services'
// JSON logs as short readable lines.
type logMux struct{ mu sync.Mutex }

func newLogMux() *logMux { return &logMux{} }

func (l *logMux) line(source, text string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Printf("%-13s %s\n", "["+source+"]", text)
}

func (l *logMux) writer(source string) io.Writer {
	pr, pw := io.Pipe()
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			l.line(source, pretty(sc.Text()))
		}
	}()
	return pw
}

// pretty turns {"time":…,"level":"INFO","msg":"http","status":201,…} into
// "INFO http status=201 …".
func pretty(s string) string {
	var rec map[string]any
	if !strings.HasPrefix(s, "{") || json.Unmarshal([]byte(s), &rec) != nil {
		return s
	}
	out := fmt.Sprint(rec["level"], " ", rec["msg"])
	keys := make([]string, 0, len(rec))
	for k := range rec {
		switch k {
		case "time", "level", "msg", "service", "span_id":
			continue
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		out += fmt.Sprintf(" %s=%v", k, rec[k])
	}
	return out
}

func serveMailUI(ctx context.Context, sink *devstack.MailSink, logs *logMux) {
	srv := &http.Server{Addr: mailUIAddr, Handler: sink.Handler()}
	go func() { <-ctx.Done(); _ = srv.Close() }()
	if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
		logs.line("devstack", "mail UI: "+err.Error())
	}
}

func get(ctx context.Context, url string) (bool, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK, nil
}
