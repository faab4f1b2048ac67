//go:build integration

package neonet

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/neogo/neo/internal/testca"
	"github.com/neogo/neo/proto"
)

// These tests run our link layer against a real neoppod master (the
// reference peers of ../shared/peers, located by NEO_PEERS as `make
// integration` sets it), in plain TCP and in TLS: neoppod connects to our
// listener (its handshake with RequestIdentification right behind) and we
// connect to it.

// startPyMaster starts a neoppod master bound to a free loopback port, with
// the given master list entries besides itself, and returns its address;
// died is called if it exits.
func startPyMaster(t *testing.T, cluster string, others []string, tlsFiles []string, died func()) string {
	t.Helper()
	peers := os.Getenv("NEO_PEERS")
	if peers == "" {
		t.Skip("NEO_PEERS not set: no neoppod to test against")
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	masters := addr
	for _, o := range others {
		masters += " " + o
	}
	dir := t.TempDir()
	args := []string{"--cluster", cluster, "--masters", masters, "--bind", addr,
		"--partitions", "1", "--replicas", "0", "--logfile", filepath.Join(dir, "master.log")}
	if tlsFiles != nil {
		args = append(args, "--ca", tlsFiles[0], "--cert", tlsFiles[1], "--key", tlsFiles[2])
	}
	const script = `. "$0" && exec "$PY" -c "import sys; from neo.scripts.neomaster import main; sys.argv[0]='neomaster'; sys.exit(main())" "$@"`
	cmd := exec.Command("bash", append([]string{"-c", script, filepath.Join(peers, "env.sh")}, args...)...)
	out, err := os.Create(filepath.Join(dir, "master.out"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
		died() // a dead master fails the test now, not at its timeout
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			b, _ := os.ReadFile(out.Name())
			t.Logf("neomaster output:\n%s", b)
		}
	})
	return addr
}

// dialRetry dials until the peer listens, within ctx.
func dialRetry(ctx context.Context, t *testing.T, addr string, cfg Config) *Link {
	t.Helper()
	for {
		l, err := Dial(ctx, "tcp4", addr, cfg)
		if err == nil {
			return l
		}
		select {
		case <-ctx.Done():
			t.Fatalf("dial %s: %v", addr, err)
		case <-time.After(100 * time.Millisecond): // neoppod is starting
		}
	}
}

func TestInteropNeoppod(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "tls"}[useTLS], func(t *testing.T) {
			log, _ := testLogger(t)
			cfg := Config{Logger: log}
			var tlsFiles []string
			if useTLS {
				ca := testca.New(t, "CA")
				certPEM, keyPEM, _ := ca.Issue(t, "node")
				dir := t.TempDir()
				for _, f := range []struct {
					name string
					b    []byte
				}{{"ca.crt", ca.PEM}, {"node.crt", certPEM}, {"node.key", keyPEM}} {
					p := filepath.Join(dir, f.name)
					if err := os.WriteFile(p, f.b, 0o600); err != nil {
						t.Fatal(err)
					}
					tlsFiles = append(tlsFiles, p)
				}
				c, err := LoadTLS(tlsFiles[0], tlsFiles[1], tlsFiles[2])
				if err != nil {
					t.Fatal(err)
				}
				cfg.TLS = c
			}
			ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
			defer cancel()

			// neoppod connects to us, as to another master.
			ln := listen(t, "tcp4", cfg)
			cluster := "interop" + strconv.Itoa(os.Getpid())
			addr := startPyMaster(t, cluster, []string{ln.Addr().String()}, tlsFiles, cancel)
			in, err := ln.Accept(ctx)
			if err != nil {
				t.Fatal(err)
			}
			closeAndWait(t, in)
			r, err := in.Recv(ctx)
			if err != nil {
				t.Fatal(err)
			}
			ri, ok := r.Msg.(*proto.RequestIdentification)
			if !ok || r.ID != 0 || ri.NodeType != proto.MASTER || ri.ClusterName != cluster {
				t.Fatalf("neoppod sent %s id %d: %+v", proto.MsgName(r.Msg.NEOMsgCode()), r.ID, r.Msg)
			}
			if err := in.Ask(ctx, &proto.Ping{}, &proto.Pong{}); err != nil {
				t.Fatalf("ping neoppod on its link: %v", err)
			}
			in.Close()

			// We connect to it.
			l := dialRetry(ctx, t, addr, cfg)
			closeAndWait(t, l)
			if err := l.Ask(ctx, &proto.Ping{}, &proto.Pong{}); err != nil {
				t.Fatalf("ping: %v", err)
			}
			var acc proto.AcceptIdentification
			err = l.Ask(ctx, &proto.RequestIdentification{NodeType: proto.CLIENT, ClusterName: cluster}, &acc)
			switch {
			case err == nil:
				t.Logf("identified by neoppod: %+v", acc)
				if acc.NodeType != proto.MASTER {
					t.Fatalf("accepted by a %v", acc.NodeType)
				}
			case errors.Is(err, proto.ErrNotReady):
				t.Logf("refused by neoppod: %v", err)
				// The cluster is not running: refused, then closed.
				if err := waitClosed(t, l); !errors.Is(err, ErrClosed) {
					t.Fatalf("link: %v", err)
				}
			default:
				t.Fatalf("identification: %v", err)
			}
		})
	}
}
