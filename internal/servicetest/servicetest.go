// Package servicetest builds the service binary and runs it as a real
// process on loopback, for end-to-end tests and the demo.
package servicetest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Module is the service's import path.
const Module = "github.com/alertmanager-feishu/alertmanager-feishu"

// Build compiles the service into dir and returns the binary's path.
func Build(dir string) (string, error) {
	bin := filepath.Join(dir, "alertmanager-feishu")
	out, err := exec.Command("go", "build", "-o", bin, Module).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
}

// Service is one running process of the service.
type Service struct {
	URL  string
	cmd  *exec.Cmd
	done chan struct{}
	err  error // Wait's result, once done is closed

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
		return nil, fmt.Errorf("service exited at start: %v\n%s", s.err, s.Logs())
	case <-time.After(10 * time.Second):
		s.Kill()
		return nil, fmt.Errorf("service did not start listening\n%s", s.Logs())
	}
	return s, nil
}

func (s *Service) waitReady(within time.Duration) error {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
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

// Stop sends SIGTERM and waits for the process to exit, returning its exit
// error (nil for a clean exit).
func (s *Service) Stop(ctx context.Context) error {
	_ = s.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
		return s.err
	case <-ctx.Done():
		s.Kill()
		return errors.New("service did not stop in time")
	}
}

// Kill ends the process at once.
func (s *Service) Kill() {
	_ = s.cmd.Process.Kill()
	<-s.done
}

// Pid is the process's ID, for reading its CPU time and memory from /proc.
func (s *Service) Pid() int { return s.cmd.Process.Pid }
