// Package servicetest runs the service on loopback for end-to-end tests
// and the demo: as a real process of the built binary where the process is
// the point (signals, a kill, replicas, a real Alertmanager), or in the
// test's own process through app.Run.
package servicetest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/common/promslog"
	"github.com/prometheus/exporter-toolkit/web"

	"github.com/alertmanager-feishu/alertmanager-feishu/internal/app"
)

// Module is the service's import path.
const Module = "github.com/alertmanager-feishu/alertmanager-feishu"

// Build compiles the service into dir and returns the binary's path.
func Build(dir string) (string, error) {
	bin := filepath.Join(dir, "alertmanager-feishu")
	out, err := exec.Command("go", "build", "-o", bin, Module).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %w\n%s", err, out)
	}
	return bin, nil
}

// Service is one running service: a process, or app.Run in this process.
type Service struct {
	URL  string
	cmd  *exec.Cmd          // nil in process
	stop context.CancelFunc // in process: ends app.Run
	done chan struct{}
	err  error // Wait's or app.Run's result, once done is closed

	mu   sync.Mutex
	logs strings.Builder
}

var listening = regexp.MustCompile(`msg="Listening on" address=(\S+)`)

// Start runs bin with args, listening on a free loopback port, and waits
// until it answers /-/ready.
func Start(bin string, args ...string) (*Service, error) {
	s, err := StartNotReady(bin, args...)
	if err != nil {
		return nil, err
	}
	if err := s.waitReady(10 * time.Second); err != nil {
		s.Kill()
		return nil, err
	}
	return s, nil
}

// StartNotReady runs bin with args and waits only until it listens.
func StartNotReady(bin string, args ...string) (*Service, error) {
	cmd := exec.Command(bin, append([]string{"--web.listen-address=127.0.0.1:0"}, args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &Service{cmd: cmd, done: make(chan struct{})}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			s.mu.Lock()
			s.logs.WriteString(line + "\n")
			s.mu.Unlock()
			if m := listening.FindStringSubmatch(line); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	go func() {
		s.err = cmd.Wait()
		close(s.done)
	}()
	select {
	case a := <-addr:
		s.URL = "http://" + a
	case <-s.done:
		return nil, fmt.Errorf("service exited at start: %w\n%s", s.err, s.Logs())
	case <-time.After(10 * time.Second):
		s.Kill()
		return nil, fmt.Errorf("service did not start listening\n%s", s.Logs())
	}
	return s, nil
}

// waitReady polls /-/ready until it answers 200, the service exits (a
// start that failed: its error is returned at once rather than after the
// whole wait), or within has passed.
func (s *Service) waitReady(within time.Duration) error {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return fmt.Errorf("service exited at start: %w\n%s", s.err, s.Logs())
		default:
		}
		resp, err := http.Get(s.URL + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("service not ready after %v\n%s", within, s.Logs())
}

// Logs returns what the service has logged so far.
func (s *Service) Logs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logs.String()
}

// Signal sends sig to the process.
func (s *Service) Signal(sig os.Signal) error { return s.cmd.Process.Signal(sig) }

// Stop sends SIGTERM (in process: ends app.Run's context) and waits for the
// service to exit, returning its exit error (nil for a clean exit).
func (s *Service) Stop(ctx context.Context) error {
	if s.cmd == nil {
		s.stop()
	} else {
		_ = s.Signal(syscall.SIGTERM)
	}
	select {
	case <-s.done:
		return s.err
	case <-ctx.Done():
		s.Kill()
		return errors.New("service did not stop in time")
	}
}

// Wait waits for the service to exit by itself (after a Signal, say)
// without stopping it, and returns how it exited; it kills the service if
// ctx ends first.
func (s *Service) Wait(ctx context.Context) error {
	select {
	case <-s.done:
		return s.err
	case <-ctx.Done():
		s.Kill()
		return errors.New("service did not exit in time")
	}
}

// Kill ends the process at once. In process, it stops the service as
// Stop does: only a process can die without finishing.
func (s *Service) Kill() {
	if s.cmd == nil {
		s.stop()
	} else {
		_ = s.cmd.Process.Kill()
	}
	<-s.done
}

// Pid is the process's ID, for reading its CPU time and memory from /proc.
func (s *Service) Pid() int { return s.cmd.Process.Pid }

// RunInProcess runs app.Run with o on a free loopback port, logging into
// the Service's Logs, and waits until it answers /-/ready. Set
// o.ConfigFile and whichever flags the test needs; the listener (unless the
// test opened one first, to name the service's URL before it runs), the web
// config (empty unless o.Web names one) and the logger are the Service's.
func RunInProcess(o app.Options) (*Service, error) {
	s, err := RunInProcessNotReady(o)
	if err != nil {
		return nil, err
	}
	if err := s.waitReady(10 * time.Second); err != nil {
		s.Kill()
		return nil, err
	}
	return s, nil
}

// RunInProcessNotReady is RunInProcess without waiting for /-/ready.
func RunInProcessNotReady(o app.Options) (*Service, error) {
	if len(o.Listeners) == 0 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		o.Listeners = []net.Listener{ln}
	}
	s := &Service{URL: "http://" + o.Listeners[0].Addr().String(), done: make(chan struct{})}
	if o.Web == nil {
		noFile, noSocket := "", false
		o.Web = &web.FlagConfig{WebConfigFile: &noFile, WebSystemdSocket: &noSocket}
	}
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = 10 << 20
	}
	if o.Timeout == 0 {
		o.Timeout = 8 * time.Second
	}
	if o.MaxDelay == 0 {
		o.MaxDelay = 2 * time.Minute
	}
	if o.Grace == 0 {
		o.Grace = 15 * time.Second
	}
	level := promslog.NewLevel()
	_ = level.Set("debug")
	o.Logger = promslog.New(&promslog.Config{Level: level, Writer: logWriter{s}})
	ctx, cancel := context.WithCancel(context.Background())
	s.stop = cancel
	go func() {
		s.err = app.Run(ctx, o)
		// Run closes the listeners once it has served them; those it
		// failed before serving are closed here, so that no port is kept.
		for _, ln := range o.Listeners {
			ln.Close()
		}
		close(s.done)
	}()
	return s, nil
}

// Done is closed when the service has exited.
func (s *Service) Done() <-chan struct{} { return s.done }

// Err is how the service exited, once Done is closed.
func (s *Service) Err() error { return s.err }

// logWriter appends what an in-process service logs to its Logs.
type logWriter struct{ s *Service }

func (w logWriter) Write(b []byte) (int, error) {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	return w.s.logs.Write(b)
}
