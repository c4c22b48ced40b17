package devstack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// StripeMock is a running stripe-mock process.
type StripeMock struct {
	URL  string // http://127.0.0.1:<port>
	cmd  *exec.Cmd
	done chan error
}

// RepoRoot walks up from the working directory to the folder holding go.work.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("devstack: go.work not found above the working directory")
		}
		dir = parent
	}
}

// StripeMockBinary returns $STRIPE_MOCK_BIN, or <repo>/.bin/stripe-mock,
// building it from the version pinned in scripts/tools/go.mod when missing.
func StripeMockBinary(ctx context.Context) (string, error) {
	if b := os.Getenv("STRIPE_MOCK_BIN"); b != "" {
		return b, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(root, ".bin", "stripe-mock")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/stripe/stripe-mock")
	cmd.Dir = filepath.Join(root, "scripts", "tools")
	cmd.Env = append(os.Environ(), "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("devstack: build stripe-mock: %w\n%s", err, out)
	}
	return bin, nil
}

// StartStripeMock runs stripe-mock on 127.0.0.1:port (0 picks one).
func StartStripeMock(ctx context.Context, port int, log io.Writer) (*StripeMock, error) {
	bin, err := StripeMockBinary(ctx)
	if err != nil {
		return nil, err
	}
	if port == 0 {
		if port, err = FreePort(); err != nil {
			return nil, err
		}
	}
	// stripe-mock also serves HTTPS, on :12112 unless told otherwise; give it
	// a free port too so several instances can run side by side.
	httpsPort, err := FreePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	cmd := exec.Command(bin, "-http-addr", addr, "-https-addr", "127.0.0.1:"+strconv.Itoa(httpsPort))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	// Its last words say why, if it exits while starting (a port taken).
	var startup bytes.Buffer
	if log == nil {
		log = io.Discard
	}
	out := io.MultiWriter(log, &limitedBuffer{buf: &startup, max: 4096})
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("devstack: start stripe-mock: %w", err)
	}
	m := &StripeMock{URL: "http://" + addr, cmd: cmd, done: make(chan error, 1)}
	go func() { m.done <- cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return m, nil
		}
		select {
		case err := <-m.done:
			return nil, fmt.Errorf("devstack: stripe-mock exited: %v: %s", err, strings.TrimSpace(startup.String()))
		case <-time.After(50 * time.Millisecond):
		}
	}
	m.Stop()
	return nil, errors.New("devstack: stripe-mock did not start listening")
}

// Stop terminates stripe-mock.
func (m *StripeMock) Stop() {
	if m == nil || m.cmd.Process == nil {
		return
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(5 * time.Second):
		_ = m.cmd.Process.Kill()
		<-m.done
	}
}

// limitedBuffer keeps the first max bytes written to it.
type limitedBuffer struct {
	mu  sync.Mutex
	buf *bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if room := l.max - l.buf.Len(); room > 0 {
		l.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
