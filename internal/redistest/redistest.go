// Package redistest runs a real redis-server on a free loopback port for
// tests and load runs. A machine without redis-server fails the test with
// what to install: the Redis backend is never quietly left untested.
package redistest

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/alertmanager-feishu/alertmanager-feishu/internal/freeport"
)

// Server is one redis-server process. It keeps its data in an append-only
// file, so a restart on the same port finds what was written before, as a
// production Redis with persistence would.
type Server struct {
	Addr  string
	dir   string
	port  int
	extra []string
	// sentinel is the configuration file of a Sentinel; "" for a server.
	sentinel string
	// tls, when set, is how to reach a server that speaks only TLS;
	// password is what it requires.
	tls      *tls.Config
	password string
	cmd      *exec.Cmd
	done     chan struct{}
}

// Start runs a redis-server for the test and stops it when the test ends.
// Every write is synced to its append-only file before Redis answers, so a
// Stop loses nothing; extra arguments (such as "--appendfsync", "everysec"
// for benchmarks) override that and other settings.
func Start(t testing.TB, extra ...string) *Server {
	t.Helper()
	s, err := Run(t.TempDir(), extra...)
	if err != nil {
		t.Fatalf("redis-server: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

// Run starts a redis-server keeping its files in dir; the caller stops it.
func Run(dir string, extra ...string) (*Server, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	s := &Server{dir: dir, extra: extra}
	if err := s.listen(nil); err != nil {
		return nil, err
	}
	return s, nil
}

// listen starts s on a free port, trying another if a process took it
// between the probe and the bind. portArgs, if not nil, gives s's extra
// arguments for the port.
func (s *Server) listen(portArgs func(port int) []string) error {
	var err error
	for range 5 {
		if s.port, err = freeport.Get(); err != nil {
			continue
		}
		if portArgs != nil {
			s.extra = portArgs(s.port)
		}
		if err = s.start(); err == nil {
			s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
			return nil
		}
	}
	return err
}

func (s *Server) start() error {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return fmt.Errorf("not found (install Debian's redis-server package; .ci/run does): %w", err)
	}
	args := []string{
		"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--dir", s.dir, "--save", "", "--appendonly", "yes", "--appendfsync", "always",
		"--daemonize", "no", "--loglevel", "warning",
	}
	if s.tls != nil {
		args[1] = "0" // no plain port
	}
	if s.sentinel != "" {
		// A Sentinel's file comes first, and it keeps no data.
		args = []string{s.sentinel, "--sentinel", "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", "--loglevel", "warning"}
	}
	s.cmd = exec.Command(bin, append(args, s.extra...)...)
	logf, err := os.Create(filepath.Join(s.dir, "redis.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := s.cmd.Start(); err != nil {
		return err
	}
	s.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) {
		_ = cmd.Wait()
		close(done)
	}(s.cmd, s.done)

	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			log, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
			return fmt.Errorf("exited at start: %s", strings.TrimSpace(string(log)))
		default:
		}
		if s.ping() == nil {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.Stop()
	return fmt.Errorf("not answering PING on port %d", s.port)
}

// StartSentinel runs a Sentinel that watches master under the name
// "mymaster", and stops it when the test ends.
func StartSentinel(t testing.TB, master *Server) *Server {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "sentinel.conf")
	text := fmt.Sprintf("sentinel monitor mymaster 127.0.0.1 %d 1\nsentinel down-after-milliseconds mymaster 1000\n", master.port)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &Server{dir: dir, sentinel: conf}
	if err := s.listen(nil); err != nil {
		t.Fatalf("redis sentinel: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

// StartCluster runs a Redis Cluster of n masters (no replicas) and returns
// their addresses once the cluster answers that its state is ok.
func StartCluster(t testing.TB, n int) []string {
	t.Helper()
	var addrs []string
	for range n {
		s := Start(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000")
		addrs = append(addrs, s.Addr)
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	out, err := exec.Command("redis-cli", append(args, "--cluster-replicas", "0", "--cluster-yes")...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	host, port, _ := net.SplitHostPort(addrs[0])
	deadline := time.Now().Add(15 * time.Second)
	for {
		info, err := exec.Command("redis-cli", "-h", host, "-p", port, "cluster", "info").Output()
		if err == nil && strings.Contains(string(info), "cluster_state:ok") {
			return addrs
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis cluster not ok: %v\n%s", err, info)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// StartSecure runs a redis-server that speaks only TLS, with a certificate
// for 127.0.0.1 from a CA of its own, and requires password. It returns the
// CA's certificate file, for clients to trust.
func StartSecure(t testing.TB, password string) (*Server, string) {
	t.Helper()
	dir := t.TempDir()
	ca, cert, key, pool, err := certificates(dir)
	if err != nil {
		t.Fatalf("redis certificates: %v", err)
	}
	s := &Server{dir: dir, tls: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}, password: password}
	err = s.listen(func(port int) []string {
		return []string{
			"--tls-port", strconv.Itoa(port), "--requirepass", password, "--tls-auth-clients", "no",
			"--tls-cert-file", cert, "--tls-key-file", key, "--tls-ca-cert-file", ca,
		}
	})
	if err != nil {
		t.Fatalf("redis-server with TLS: %v", err)
	}
	t.Cleanup(s.Stop)
	return s, ca
}

// certificates writes a CA and a server certificate for 127.0.0.1 into dir.
func certificates(dir string) (caFile, certFile, keyFile string, pool *x509.CertPool, err error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "redistest CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return
	}
	caFile, certFile, keyFile = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	for file, block := range map[string]*pem.Block{
		caFile: {Type: "CERTIFICATE", Bytes: caDER}, certFile: {Type: "CERTIFICATE", Bytes: der}, keyFile: {Type: "EC PRIVATE KEY", Bytes: keyDER},
	} {
		if err = os.WriteFile(file, pem.EncodeToMemory(block), 0o600); err != nil {
			return
		}
	}
	pool = x509.NewCertPool()
	pool.AddCert(caCert)
	return caFile, certFile, keyFile, pool, nil
}

// Stop ends the server at once, as a crash or a network cut would appear.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// Restart starts the server again on the same port with the same data.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop()
	if err := s.start(); err != nil {
		t.Fatalf("redis-server restart: %v", err)
	}
}

// ping asks the server for PONG, over TLS and with its password if it
// has them.
func (s *Server) ping() error {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
	d := &net.Dialer{Timeout: time.Second}
	var c net.Conn
	var err error
	if s.tls != nil {
		c, err = tls.DialWithDialer(d, "tcp", addr, s.tls)
	} else {
		c, err = d.Dial("tcp", addr)
	}
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	r := bufio.NewReader(c)
	if s.password != "" {
		if _, err := fmt.Fprintf(c, "AUTH %s\r\n", s.password); err != nil {
			return err
		}
		line, err := r.ReadString('\n')
		if err != nil {
			return fmt.Errorf("AUTH answered %q: %w", line, err)
		}
		if line != "+OK\r\n" {
			return fmt.Errorf("AUTH answered %q", line)
		}
	}
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}
