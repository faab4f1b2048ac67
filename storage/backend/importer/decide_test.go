package importer

import (
	"slices"
	"testing"

	"github.com/neogo/neo/proto"
)

const inv = proto.InvalidTid

func TestNextTid(t *testing.T) {
	for _, tc := range []struct {
		heads []proto.Tid
		tid   proto.Tid
		from  []int
		ok    bool
	}{
		{nil, inv, nil, false},
		{[]proto.Tid{inv, inv}, inv, nil, false},
		{[]proto.Tid{5}, 5, []int{0}, true},
		{[]proto.Tid{7, 5, inv, 6}, 5, []int{1}, true},
		{[]proto.Tid{5, 7, 5}, 5, []int{0, 2}, true}, // same tid: one transaction, first's metadata
		{[]proto.Tid{inv, 3, 3}, 3, []int{1, 2}, true},
	} {
		tid, from, ok := nextTid(tc.heads)
		if tid != tc.tid || !slices.Equal(from, tc.from) || ok != tc.ok {
			t.Errorf("nextTid(%v) = %v %v %v, want %v %v %v", tc.heads, tid, from, ok, tc.tid, tc.from, tc.ok)
		}
	}
}

func TestLoadPlan(t *testing.T) {
	const ltid = 100
	for _, tc := range []struct {
		done, in   bool
		at, before proto.Tid
		w          where
		srcBefore  proto.Tid
	}{
		{true, true, inv, inv, fromBackend, 0},
		{false, false, inv, inv, fromBackend, 0}, // oid created after the import began
		{false, true, 50, inv, fromSource, 51},   // a source revision, imported or not
		{false, true, ltid, inv, fromSource, ltid + 1},
		{false, true, ltid + 1, inv, fromBackend, 0}, // a new commit
		{false, true, inv, 50, fromSource, 50},
		{false, true, inv, ltid + 1, fromSource, ltid + 1},
		{false, true, inv, ltid + 2, fromEither, ltid + 1},
		{false, true, inv, inv, fromEither, ltid + 1},
	} {
		w, sb := loadPlan(tc.done, tc.in, ltid, tc.at, tc.before)
		if w != tc.w || (w != fromBackend && sb != tc.srcBefore) {
			t.Errorf("loadPlan(done=%v, in=%v, at=%v, before=%v) = %v %v, want %v %v", tc.done, tc.in, tc.at, tc.before, w, sb, tc.w, tc.srcBefore)
		}
	}
}

func TestNextSerial(t *testing.T) {
	const ltid = 100
	calls := 0
	firstNew := func(t proto.Tid) func() (proto.Tid, error) {
		return func() (proto.Tid, error) { calls++; return t, nil }
	}
	for _, tc := range []struct {
		srcNext, firstNew, want proto.Tid
		asks                    bool
	}{
		{60, 200, 60, false}, // the source's next, even if not imported yet
		{ltid, inv, ltid, false},
		{0, inv, inv, true},   // the latest of the source and nothing new
		{0, 200, 200, true},   // followed by a new commit
		{150, 200, 200, true}, // a source grown by writeback: the destination decides
	} {
		calls = 0
		got, err := nextSerial(tc.srcNext, ltid, firstNew(tc.firstNew))
		if err != nil || got != tc.want || (calls > 0) != tc.asks {
			t.Errorf("nextSerial(%v, firstNew=%v) = %v (asked %d), want %v (ask %v)", tc.srcNext, tc.firstNew, got, calls, tc.want, tc.asks)
		}
	}
}

func TestSourceOf(t *testing.T) {
	ranges := []oidRange{{0, 10}, {10, 11}, {20, 30}}
	for oid, want := range map[proto.Oid]int{0: 0, 9: 0, 10: 1, 11: -1, 19: -1, 20: 2, 29: 2, 30: -1, 1 << 40: -1} {
		if got := sourceOf(ranges, oid); got != want {
			t.Errorf("sourceOf(%v) = %d, want %d", oid, got, want)
		}
	}
}

func TestParseRate(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "100": 100, "2K": 2048, "3m": 3 << 20, " 1G ": 1 << 30} {
		if got, err := parseRate(in); err != nil || got != want {
			t.Errorf("parseRate(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "x", "-1", "1T", "99999999999G"} {
		if _, err := parseRate(in); err == nil {
			t.Errorf("parseRate(%q): no error", in)
		}
	}
}
