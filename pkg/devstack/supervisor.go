package devstack

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Supervisor runs processes the way an orchestrator would: one that exits
// or is killed is started again after a backoff that doubles from
// MinBackoff to MaxBackoff (and starts over once a process has stayed up
// for StableAfter), saying so in the log; the platform keeps serving.
// Only Stop, or the end of Run's context, stops them all, in reverse order
// of Add.
type Supervisor struct {
	// Log receives one line per event (started, exited, restarting).
	Log func(source, line string)
	// Output makes the writer a process's stdout and stderr go to.
	Output func(name string) io.Writer

	MinBackoff, MaxBackoff, StableAfter time.Duration

	mu    sync.Mutex
	procs []*supervised
	wg    sync.WaitGroup
}

// supervised is one process and its restarts.
type supervised struct {
	name, bin string
	args, env []string
	mu        sync.Mutex
	cmd       *exec.Cmd
	restarts  int
	stopped   bool
	running   chan struct{} // closed when the current run ends
}

// Add starts bin as name (with args and env) and keeps it running until
// Stop. An error means it could not be started at all (missing binary).
func (s *Supervisor) Add(ctx context.Context, name, bin string, args, env []string) error {
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("%s is not built: %w", bin, err)
	}
	p := &supervised{name: name, bin: bin, args: args, env: env}
	if err := s.spawn(p); err != nil {
		return err
	}
	s.mu.Lock()
	s.procs = append(s.procs, p)
	s.mu.Unlock()
	s.wg.Add(1)
	go s.watch(ctx, p)
	return nil
}

func (s *Supervisor) spawn(p *supervised) error {
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = p.env
	if s.Output != nil {
		w := s.Output(p.name)
		cmd.Stdout, cmd.Stderr = w, w
	}
	// Own process group: Ctrl-C reaches the supervisor, which stops the
	// processes in order instead of everything dying at once.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	running := make(chan struct{})
	p.mu.Lock()
	p.cmd, p.running = cmd, running
	p.mu.Unlock()
	go func() { _ = cmd.Wait(); close(running) }()
	return nil
}

// watch restarts p whenever it ends, until it is stopped.
func (s *Supervisor) watch(ctx context.Context, p *supervised) {
	defer s.wg.Done()
	backoff := s.min()
	for {
		p.mu.Lock()
		cmd, running := p.cmd, p.running
		p.mu.Unlock()
		started := time.Now()
		<-running
		p.mu.Lock()
		stopped := p.stopped
		p.mu.Unlock()
		if stopped || ctx.Err() != nil {
			return
		}
		if time.Since(started) >= s.stable() {
			backoff = s.min()
		}
		s.log(p.name, fmt.Sprintf("exited (%s); restarting in %s", cmd.ProcessState, backoff))
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		p.mu.Lock()
		if p.stopped {
			p.mu.Unlock()
			return
		}
		p.restarts++
		p.mu.Unlock()
		if err := s.spawn(p); err != nil {
			s.log(p.name, "could not restart: "+err.Error())
		} else {
			s.log(p.name, fmt.Sprintf("restarted (pid %d)", s.PID(p.name)))
		}
		backoff = min(2*backoff, s.max())
	}
}

// Signal sends sig to name's current process (the chaos run's kill -9).
func (s *Supervisor) Signal(name string, sig syscall.Signal) error {
	p := s.find(name)
	if p == nil {
		return fmt.Errorf("no process %q", name)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd.Process.Signal(sig)
}

// PID is name's current process id, 0 if unknown.
func (s *Supervisor) PID(name string) int {
	p := s.find(name)
	if p == nil {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd.Process.Pid
}

// Restarts is how often name was started again.
func (s *Supervisor) Restarts(name string) int {
	p := s.find(name)
	if p == nil {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.restarts
}

func (s *Supervisor) find(name string) *supervised {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.procs {
		if p.name == name {
			return p
		}
	}
	return nil
}

// Stop sends SIGTERM to every process, the last added first, waits up to
// grace for each (then kills it), and stops restarting them.
func (s *Supervisor) Stop(grace time.Duration) {
	s.mu.Lock()
	procs := append([]*supervised(nil), s.procs...)
	s.mu.Unlock()
	for i := len(procs) - 1; i >= 0; i-- {
		p := procs[i]
		p.mu.Lock()
		p.stopped = true
		cmd, running := p.cmd, p.running
		p.mu.Unlock()
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-running:
		case <-time.After(grace):
			_ = cmd.Process.Kill()
			<-running
		}
	}
	s.wg.Wait()
}

func (s *Supervisor) log(source, line string) {
	if s.Log != nil {
		s.Log(source, line)
	}
}

func (s *Supervisor) min() time.Duration {
	if s.MinBackoff > 0 {
		return s.MinBackoff
	}
	return 250 * time.Millisecond
}

func (s *Supervisor) max() time.Duration {
	if s.MaxBackoff > 0 {
		return s.MaxBackoff
	}
	return 10 * time.Second
}

func (s *Supervisor) stable() time.Duration {
	if s.StableAfter > 0 {
		return s.StableAfter
	}
	return 30 * time.Second
}
