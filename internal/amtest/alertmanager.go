package amtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alertmanager-feishu/alertmanager-feishu/internal/freeport"
)

// Version is the Alertmanager release the end-to-end tests run.
const Version = "v0.34.2"

// DebianAlertmanager is Debian's older Alertmanager (0.25), whose payloads
// lack fields the newer releases add.
const DebianAlertmanager = "/usr/bin/prometheus-alertmanager"

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// Binaries returns the folder holding alertmanager and amtool of Version,
// building them on first use with scripts/build-alertmanager.sh into a cache
// outside the repository (a minute cold, nothing once cached).
func Binaries() (string, error) {
	buildOnce.Do(func() {
		root, err := repoRoot()
		if err != nil {
			buildErr = err
			return
		}
		cmd := exec.Command(filepath.Join(root, "scripts", "build-alertmanager.sh"))
		cmd.Env = append(os.Environ(), "ALERTMANAGER_VERSION="+Version)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			buildErr = fmt.Errorf("build alertmanager %s: %w\n%s", Version, err, stderr.String())
			return
		}
		buildDir = strings.TrimSpace(string(out))
	})
	return buildDir, buildErr
}

// repoRoot is the nearest folder above the working directory that holds
// the build script: the repository, from its own module or the deploy one.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "scripts", "build-alertmanager.sh")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("scripts/build-alertmanager.sh not found above the working directory")
		}
		dir = parent
	}
}

// Alertmanager is one running Alertmanager process.
type Alertmanager struct {
	URL         string // its web address
	ClusterAddr string // its cluster listener, "" when not clustered
	cmd         *exec.Cmd
	done        chan struct{}
	logs        *bytes.Buffer
	logMu       *sync.Mutex
}

// Options say how to run an Alertmanager.
type Options struct {
	Binary string // the alertmanager binary
	Config string // alertmanager.yml's content
	// Cluster makes it a cluster member gossiping with Peers; with Cluster
	// false it runs alone, with no peer wait.
	Cluster bool
	Peers   []string
	// PeerTimeout is how long the second member waits for the first's
	// notification to be gossiped before sending itself.
	PeerTimeout time.Duration
	// WebConfig is the content of a --web.config.file (basic auth, TLS);
	// "" runs without one.
	WebConfig string
}

// Run starts an Alertmanager on free loopback ports and stops it when the
// test ends.
func Run(t testing.TB, o Options) *Alertmanager {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(cfg, []byte(o.Config), 0o600); err != nil {
		t.Fatal(err)
	}
	port, err := freeport.Get()
	if err != nil {
		t.Fatal(err)
	}
	am := &Alertmanager{
		URL:   "http://127.0.0.1:" + strconv.Itoa(port),
		done:  make(chan struct{}),
		logs:  &bytes.Buffer{},
		logMu: &sync.Mutex{},
	}
	args := []string{
		"--config.file=" + cfg,
		"--storage.path=" + filepath.Join(dir, "data"),
		"--web.listen-address=127.0.0.1:" + strconv.Itoa(port),
		"--web.external-url=" + am.URL,
		"--log.level=debug",
	}
	if o.WebConfig != "" {
		web := filepath.Join(dir, "web.yml")
		if err := os.WriteFile(web, []byte(o.WebConfig), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--web.config.file="+web)
	}
	if o.Cluster {
		cport, err := freeport.Get()
		if err != nil {
			t.Fatal(err)
		}
		am.ClusterAddr = "127.0.0.1:" + strconv.Itoa(cport)
		args = append(args, "--cluster.listen-address="+am.ClusterAddr, "--cluster.advertise-address="+am.ClusterAddr)
		for _, p := range o.Peers {
			args = append(args, "--cluster.peer="+p)
		}
		if o.PeerTimeout > 0 {
			args = append(args, "--cluster.peer-timeout="+o.PeerTimeout.String())
		}
	} else {
		args = append(args, "--cluster.listen-address=")
	}
	am.cmd = exec.Command(o.Binary, args...)
	am.cmd.Stdout = lockedWriter{am.logMu, am.logs}
	am.cmd.Stderr = lockedWriter{am.logMu, am.logs}
	if err := am.cmd.Start(); err != nil {
		t.Fatalf("alertmanager: %v", err)
	}
	go func() {
		_ = am.cmd.Wait()
		close(am.done)
	}()
	t.Cleanup(func() {
		am.Stop()
		if t.Failed() {
			t.Logf("alertmanager %s log:\n%s", am.URL, am.Logs())
		}
	})

	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get(am.URL + "/-/ready")
		if err == nil {
			resp.Body.Close()
			// /-/ready answers 200 as soon as the server listens; with a
			// web config its auth answers 401 in front of it instead.
			if resp.StatusCode == http.StatusOK || o.WebConfig != "" && resp.StatusCode == http.StatusUnauthorized {
				return am
			}
		}
		select {
		case <-am.done:
			t.Fatalf("alertmanager exited at start:\n%s", am.Logs())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("alertmanager not ready:\n%s", am.Logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop interrupts the process and waits for it.
func (am *Alertmanager) Stop() {
	select {
	case <-am.done:
		return
	default:
	}
	_ = am.cmd.Process.Signal(os.Interrupt)
	select {
	case <-am.done:
	case <-time.After(10 * time.Second):
		_ = am.cmd.Process.Kill()
		<-am.done
	}
}

// Logs returns what the process has printed.
func (am *Alertmanager) Logs() string {
	am.logMu.Lock()
	defer am.logMu.Unlock()
	return am.logs.String()
}

// Alert is an alert as Prometheus posts it to /api/v2/alerts.
type Alert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	StartsAt     time.Time         `json:"startsAt,omitzero"`
	EndsAt       time.Time         `json:"endsAt,omitzero"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// PostAlerts posts alerts as Prometheus does.
func (am *Alertmanager) PostAlerts(alerts ...Alert) error {
	b, err := json.Marshal(alerts)
	if err != nil {
		return err
	}
	resp, err := http.Post(am.URL+"/api/v2/alerts", "application/json", bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("post alerts: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("post alerts: status %d", resp.StatusCode)
	}
	return nil
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
