package neonet

import (
	"crypto/tls"
	"net"
	"syscall"
	"testing"

	"github.com/neogo/neo/internal/testca"
)

// Both ends set neoppod's socket options (§1.1): TCP_NODELAY, keepalive
// idle 60 s, interval 10 s, 3 probes; plain and under TLS.
func TestSocketOptions(t *testing.T) {
	ca := testca.New(t, "CA")
	for _, cfg := range []Config{{}, {TLS: nodeTLS(t, ca, ca.PEM)}} {
		cli, srv := pair(t, "tcp4", cfg, cfg)
		for _, l := range []*Link{cli, srv} {
			conn := l.conn
			if tc, ok := conn.(*tls.Conn); ok {
				conn = tc.NetConn()
			}
			if pc, ok := conn.(*prefixConn); ok {
				conn = pc.Conn
			}
			raw, err := conn.(*net.TCPConn).SyscallConn()
			if err != nil {
				t.Fatal(err)
			}
			for _, opt := range []struct {
				name       string
				level, opt int
				want       int
			}{
				{"TCP_NODELAY", syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1},
				{"SO_KEEPALIVE", syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, 1},
				{"TCP_KEEPIDLE", syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE, 60},
				{"TCP_KEEPINTVL", syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL, 10},
				{"TCP_KEEPCNT", syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT, 3},
			} {
				var got int
				var gerr error
				if err := raw.Control(func(fd uintptr) { got, gerr = syscall.GetsockoptInt(int(fd), opt.level, opt.opt) }); err != nil {
					t.Fatal(err)
				}
				if gerr != nil || got != opt.want {
					t.Errorf("%s: %s = %d (%v), want %d", l, opt.name, got, gerr, opt.want)
				}
			}
		}
	}
}
