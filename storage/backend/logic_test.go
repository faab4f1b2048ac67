package backend

import (
	"encoding/hex"
	"testing"

	"github.com/neogo/neo/proto"
)

// Cases from cluster.md §8.4; tids are small numbers, none = InvalidTid.
func TestFindUndoTid(t *testing.T) {
	const none = proto.InvalidTid
	rec := func(tid, vt proto.Tid) UndoRecord { return UndoRecord{Tid: tid, ValueTid: vt} }
	for _, tt := range []struct {
		name              string
		h                 UndoHistory
		ltid, undo, inTxn proto.Tid
		want              UndoResult
		ok                bool
	}{
		{"undo the latest revision restores the previous one",
			UndoHistory{Before: 10}, 100, 20, none, UndoResult{Current: 20, UndoTo: 10, IsCurrent: true}, true},
		{"undo a creation restores nothing",
			UndoHistory{Before: none}, 100, 10, none, UndoResult{Current: 10, UndoTo: none, IsCurrent: true}, true},
		{"a later revision makes it an undo conflict",
			UndoHistory{Before: 10, After: []UndoRecord{rec(30, none)}}, 100, 20, none, UndoResult{Current: 30, UndoTo: 10, IsCurrent: false}, true},
		{"later revisions beyond ltid are not seen",
			UndoHistory{Before: 10, After: []UndoRecord{rec(30, none)}}, 25, 20, none, UndoResult{Current: 20, UndoTo: 10, IsCurrent: true}, true},
		{"nothing visible",
			UndoHistory{Before: 10}, 20, 20, none, UndoResult{}, false},
		{"a copy of the undone revision is still current",
			UndoHistory{Before: 10, After: []UndoRecord{rec(30, 20)}}, 100, 20, none, UndoResult{Current: 30, UndoTo: 10, IsCurrent: true}, true},
		{"an undo-identical copy of before resolves to the greatest",
			UndoHistory{Before: 10, After: []UndoRecord{rec(30, 10), rec(40, 20)}}, 100, 20, none, UndoResult{Current: 40, UndoTo: 30, IsCurrent: true}, true},
		{"the undoing transaction's own store is current",
			UndoHistory{Before: 10, After: []UndoRecord{rec(30, none)}}, 100, 20, 50, UndoResult{Current: 50, UndoTo: 10, IsCurrent: false}, true},
		{"a non-pointer after record never matches a missing before",
			UndoHistory{Before: none, After: []UndoRecord{rec(30, none)}}, 100, 20, none, UndoResult{Current: 30, UndoTo: none, IsCurrent: false}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := FindUndoTid(tt.h, tt.ltid, tt.undo, tt.inTxn)
			if ok != tt.ok || got != tt.want {
				t.Errorf("FindUndoTid = %+v %v, want %+v %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestDigestFormat(t *testing.T) {
	// SHA-1 of "1,20,300" (decimal, comma-joined, no trailing comma), as
	// Python's hashlib gives it.
	got := digest([]uint64{1, 20, 300})
	if h := hex.EncodeToString(got[:]); h != "5591a76edddb144db626e701c9f77ab6683e1ccd" {
		t.Errorf("digest = %s", h)
	}
}
