package freeport

import (
	"fmt"
	"net"
	"testing"
)

func TestPorts(t *testing.T) {
	ports := Ports(t, 5)
	seen := map[int]bool{}
	for _, p := range ports {
		if p < Low || p >= High || seen[p] {
			t.Fatalf("ports %v: %d out of [%d, %d) or repeated", ports, p, Low, High)
		}
		seen[p] = true
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			t.Fatalf("port %d not free after Ports returned: %v", p, err)
		}
		l.Close()
	}
}
