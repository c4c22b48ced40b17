// Package devstack starts the platform's real dependencies on one machine,
// without Docker: an embedded NATS JetStream server, a local PostgreSQL
// cluster, stripe-mock and an SMTP sink. `make run` and the tests use the same
// code, so what is tested is what runs.
package devstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// SuperuserPassword is the local cluster's superuser password. The cluster
// listens on loopback only and exists for development and tests.
const SuperuserPassword = "postgres"

// Postgres is a PostgreSQL server running from a data directory as a child
// process.
type Postgres struct {
	Dir  string
	Port int
	cmd  *exec.Cmd
	done chan error
}

// AdminDSN is the superuser DSN for database db (default "postgres").
func (p *Postgres) AdminDSN(db string) string {
	if db == "" {
		db = "postgres"
	}
	return fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/%s?sslmode=disable", SuperuserPassword, p.Port, db)
}

// PostgresBinDir finds the server binaries: $PG_BIN, then pg_config, then
// the newest /usr/lib/postgresql/<v>/bin (Debian's layout), then $PATH.
func PostgresBinDir() (string, error) {
	if d := os.Getenv("PG_BIN"); d != "" {
		return d, nil
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		d := strings.TrimSpace(string(out))
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("devstack: PostgreSQL server binaries not found (install Debian's postgresql package or set PG_BIN)")
}

func versionOf(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// PostgresOptions tune StartPostgres.
type PostgresOptions struct {
	// Port to listen on (127.0.0.1); 0 picks a free one.
	Port int
	// Durable keeps fsync on. Tests turn it off for speed; make run keeps it.
	Durable bool
	// Log receives the server's output; nil discards it.
	Log io.Writer
}

// StartPostgres initialises dir as a cluster if it is not one yet and starts
// the server. initdb refuses to run as root, so as root the cluster is owned
// by and run as the "postgres" system user.
func StartPostgres(ctx context.Context, dir string, opt PostgresOptions) (*Postgres, error) {
	bin, err := PostgresBinDir()
	if err != nil {
		return nil, err
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return nil, err
	}
	cred, err := serverCredential()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, err
		}
	}
	out := opt.Log
	if out == nil {
		out = io.Discard
	}
	if _, err := os.Stat(filepath.Join(dir, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		pwfile := filepath.Join(dir, "..", "."+filepath.Base(dir)+".pw")
		if err := os.WriteFile(pwfile, []byte(SuperuserPassword+"\n"), 0o644); err != nil {
			return nil, err
		}
		defer os.Remove(pwfile)
		args := []string{"-D", dir, "-U", "postgres", "--pwfile", pwfile, "--auth", "scram-sha-256", "-E", "UTF8", "--locale", "C"}
		if !opt.Durable {
			args = append(args, "--no-sync")
		}
		cmd := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		if b, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("devstack: initdb %s: %w\n%s", dir, err, b)
		}
	}
	port := opt.Port
	if port == 0 {
		if port, err = FreePort(); err != nil {
			return nil, err
		}
	}
	args := []string{"-D", dir, "-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=",
		"-c", "max_connections=300", "-c", "timezone=UTC", "-c", "log_timezone=UTC"}
	if !opt.Durable {
		args = append(args, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	cmd := exec.Command(filepath.Join(bin, "postgres"), args...)
	// Own process group: a Ctrl-C aimed at `make run` reaches us, and we stop
	// the server cleanly ourselves instead of it dying mid-checkpoint.
	// Pdeathsig: if this process dies without stopping the server (a test
	// binary that panics), the kernel still stops it, with a fast shutdown.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true, Pdeathsig: syscall.SIGINT}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("devstack: start postgres: %w", err)
	}
	p := &Postgres{Dir: dir, Port: port, cmd: cmd, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	if err := p.waitReady(ctx, 60*time.Second); err != nil {
		_ = p.Stop()
		return nil, err
	}
	return p, nil
}

func (p *Postgres) waitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var lastErr error
	for time.Now().Before(deadline) {
		select {
		case err := <-p.done:
			p.done <- err
			return fmt.Errorf("devstack: postgres exited during start-up: %v", err)
		default:
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		conn, err := pgx.Connect(cctx, p.AdminDSN(""))
		cancel()
		if err == nil {
			return conn.Close(ctx)
		}
		lastErr = err
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("devstack: postgres not ready after %s: %v", timeout, lastErr)
}

// Stop asks for a fast shutdown (SIGINT) and waits for the server to exit.
func (p *Postgres) Stop() error {
	if p == nil || p.cmd.Process == nil {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	return nil
}

// Kill sends SIGKILL to the postmaster, as a crash would, and waits for it
// to exit; its backends notice and exit on their own (the chaos run).
func (p *Postgres) Kill() error {
	if p == nil || p.cmd.Process == nil {
		return nil
	}
	if err := p.cmd.Process.Kill(); err != nil {
		return err
	}
	err := <-p.done
	p.done <- err
	return nil
}

// serverCredential is nil unless we are root, in which case the server runs
// as the postgres system user.
func serverCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, errors.New("devstack: running as root needs a 'postgres' system user (Debian's postgresql package creates it)")
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// FreePort finds a free TCP port on loopback for a server to listen on.
func FreePort() (int, error) {
	// Ports below Linux's ephemeral range (32768–60999 by default): the
	// kernel never hands these to outgoing connections, so a port found
	// free here is not taken by a client socket of another test between
	// this check and the server's own listen (which happened with :0).
	for range 100 {
		port := 20000 + mrand.IntN(12000)
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		l.Close()
		return port, nil
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
