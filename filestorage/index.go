package filestorage

import (
	"slices"
	"sort"

	"github.com/neogo/neo/proto"
)

// Index maps each oid to the position of its latest data record. It is
// laid out as ZODB's fsIndex (spec §7): oids grouped by their 6 high
// bytes, each group a sorted array of 2-byte suffixes and one of 6-byte
// positions, so an entry costs 8 bytes (plus the slack of growing
// slices) where a Go map costs 20 to 40. Oids are mostly allocated in
// increasing order, so inserts are mostly appends.
//
// An Index is not safe for concurrent use; Storage guards its own.
type Index struct {
	groups map[proto.Oid]*indexGroup // by oid >> 16
	n      int
}

type indexGroup struct {
	suffix []uint16 // ascending
	pos    []byte   // 6 big-endian bytes per suffix
}

// NewIndex returns an empty Index.
func NewIndex() *Index { return &Index{groups: map[proto.Oid]*indexGroup{}} }

// Len is the number of oids.
func (x *Index) Len() int { return x.n }

// Get returns the position of oid, and whether it is there.
func (x *Index) Get(oid proto.Oid) (int64, bool) {
	g := x.groups[oid>>16]
	if g == nil {
		return 0, false
	}
	i, ok := slices.BinarySearch(g.suffix, uint16(oid))
	if !ok {
		return 0, false
	}
	return get48(g.pos[6*i:]), true
}

// Set sets the position of oid; pos must be below 2^48.
func (x *Index) Set(oid proto.Oid, pos int64) {
	g := x.groups[oid>>16]
	if g == nil {
		g = &indexGroup{}
		x.groups[oid>>16] = g
	}
	s := uint16(oid)
	n := len(g.suffix)
	var i int
	if n == 0 || g.suffix[n-1] < s {
		i = n // the common case: a new oid above the others
	} else {
		var ok bool
		if i, ok = slices.BinarySearch(g.suffix, s); ok {
			put48(g.pos[6*i:], pos)
			return
		}
	}
	g.suffix = slices.Insert(g.suffix, i, s)
	g.pos = slices.Insert(g.pos, 6*i, 0, 0, 0, 0, 0, 0)
	put48(g.pos[6*i:], pos)
	x.n++
}

// All calls fn for every oid in ascending order, until fn returns false.
func (x *Index) All(fn func(oid proto.Oid, pos int64) bool) {
	for _, hi := range x.sortedGroups() {
		g := x.groups[hi]
		for i, s := range g.suffix {
			if !fn(hi<<16|proto.Oid(s), get48(g.pos[6*i:])) {
				return
			}
		}
	}
}

// Max is the greatest oid, 0 if none.
func (x *Index) Max() proto.Oid {
	var m proto.Oid
	var found bool
	for hi, g := range x.groups {
		if len(g.suffix) > 0 && (!found || hi > m>>16) {
			m, found = hi<<16|proto.Oid(g.suffix[len(g.suffix)-1]), true
		}
	}
	return m
}

func (x *Index) sortedGroups() []proto.Oid {
	his := make([]proto.Oid, 0, len(x.groups))
	for hi, g := range x.groups {
		if len(g.suffix) > 0 {
			his = append(his, hi)
		}
	}
	sort.Slice(his, func(i, j int) bool { return his[i] < his[j] })
	return his
}

// Equal reports whether x and y hold the same entries.
func (x *Index) Equal(y *Index) bool {
	if x.n != y.n {
		return false
	}
	eq := true
	x.All(func(oid proto.Oid, pos int64) bool {
		p, ok := y.Get(oid)
		eq = ok && p == pos
		return eq
	})
	return eq
}

func get48(b []byte) int64 {
	_ = b[5]
	return int64(b[0])<<40 | int64(b[1])<<32 | int64(b[2])<<24 | int64(b[3])<<16 | int64(b[4])<<8 | int64(b[5])
}

func put48(b []byte, v int64) {
	_ = b[5]
	b[0], b[1], b[2], b[3], b[4], b[5] = byte(v>>40), byte(v>>32), byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
}
