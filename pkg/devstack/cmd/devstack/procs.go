package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/saisei-health/platform/pkg/devstack"
)

// group runs the service processes.
type group struct {
	logs   *logMux
	mu     sync.Mutex
	cmds   []*exec.Cmd
	done   []chan struct{}
	exited chan string
}

func (g *group) start(bin, name string, env []string) error {
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("%s is not built (run `make run`, which builds it): %w", bin, err)
	}
	cmd := exec.Command(bin)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = g.logs.writer(name), g.logs.writer(name)
	// Own process group: Ctrl-C reaches devstack, which stops the services
	// in order instead of everything dying at once.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.exited == nil {
		g.exited = make(chan string, 16)
	}
	done := make(chan struct{})
	g.cmds, g.done = append(g.cmds, cmd), append(g.done, done)
	go func() {
		_ = cmd.Wait()
		close(done)
		g.exited <- name
	}()
	return nil
}

// stop sends SIGTERM to every service (gateway first, as it was started
// last) and waits up to 20 s for each.
func (g *group) stop() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for i := len(g.cmds) - 1; i >= 0; i-- {
		_ = g.cmds[i].Process.Signal(syscall.SIGTERM)
		select {
		case <-g.done[i]:
		case <-time.After(20 * time.Second):
			_ = g.cmds[i].Process.Kill()
		}
	}
}

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
