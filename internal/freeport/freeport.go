// Package freeport picks loopback TCP ports for test nodes that bind
// their own addresses (subprocesses, or nodes restarted on a known port).
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"testing"
)

// Low and High bound the ports Ports picks: below the kernel's ephemeral
// range (32768+), so that no outgoing connection takes one before the
// node binds it.
const Low, High = 25000, 32000

// Ports returns n distinct loopback ports in [Low, High), free at the time
// of the call. Random picks keep concurrent test processes apart.
func Ports(t testing.TB, n int) []int {
	t.Helper()
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for tries := 0; len(ports) < n; tries++ {
		if tries == 1000 {
			t.Fatalf("no free port in [%d, %d)", Low, High)
		}
		port := Low + rand.IntN(High-Low)
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		ls = append(ls, l)
		ports = append(ports, port)
	}
	return ports
}
