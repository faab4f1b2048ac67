package core

import (
	"slices"
	"testing"

	"github.com/neogo/neo/proto"
)

func TestCoreSavesMasterList(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.SaveMasterList = true
		c.Masters = []proto.Addr{simAddr(10001)}
	})
	saved := func(effects []Effect) []proto.Addr {
		for _, e := range effects {
			if e.Kind == SaveMasters {
				return e.Masters
			}
		}
		return nil
	}
	effects := h.step(Tick{})
	if got, want := saved(effects), []proto.Addr{simAddr(10000), simAddr(10001)}; !slices.Equal(got, want) {
		t.Fatalf("first save %v, want %v:\n%s", got, want, dump(effects))
	}
	if got := saved(h.step(Tick{})); got != nil {
		t.Fatalf("saved again without change: %v", got)
	}
	// A secondary tells about a third master.
	var dial ConnID
	for _, e := range effects {
		if e.Kind == Dial {
			dial = e.Conn
		}
	}
	effects = h.step(Recv{Conn: dial, MsgID: 1, Msg: &proto.NotPrimaryMaster{
		KnownMasters: []proto.Addr{simAddr(10001), simAddr(10002)}}})
	if got, want := saved(effects), []proto.Addr{simAddr(10000), simAddr(10001), simAddr(10002)}; !slices.Equal(got, want) {
		t.Fatalf("save after a new master %v, want %v:\n%s", got, want, dump(effects))
	}
}
