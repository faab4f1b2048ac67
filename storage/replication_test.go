package storage

import (
	"context"
	"maps"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/neogo/neo/proto"
)

// The answer to AskUnfinishedTransactions reaches register while
// serveMaster handles the master's notifications: the end of a listed
// transaction may be handled before the answer, and must not be waited
// for afterwards (it was, and the cell never became UP_TO_DATE).
func TestReplicatorTransactionEndedBeforeAnswer(t *testing.T) {
	const (
		maxTid = proto.Tid(0x20)
		early  = proto.Tid(0x10) // ends before the answer is handled
		late   = proto.Tid(0x15) // ends after
	)
	tests := []struct {
		name     string
		earlyTid proto.Tid // 0: aborted
		wantUpTo proto.Tid
	}{
		{"committed", 0x30, 0x30},
		{"aborted", 0, maxTid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &replicator{}
			r.mu.parts = map[uint32]*replicaState{}
			r.transactionFinished(0x5, 0x6) // before asking: not listed, ignored
			r.asking()
			r.transactionFinished(early, tc.earlyTid)
			pending := r.addParts([]uint32{0, 1},
				&proto.AnswerUnfinishedTransactions{MaxTid: maxTid, TTidList: []proto.Tid{early, late}},
				map[uint32]proto.Tid{1: 0x3})
			r.asked()
			if !slices.Equal(pending, []proto.Tid{late}) {
				t.Fatalf("pending = %v, want [%v]", pending, late)
			}
			for p, done := range map[uint32]proto.Tid{0: 0, 1: 0x3} {
				st := r.mu.parts[p]
				if got := slices.Collect(maps.Keys(st.pending)); !slices.Equal(got, []proto.Tid{late}) {
					t.Errorf("partition %d waits for %v, want [%v]", p, got, late)
				}
				if st.upTo != tc.wantUpTo || st.done != done {
					t.Errorf("partition %d: up to %v done %v, want %v %v", p, st.upTo, st.done, tc.wantUpTo, done)
				}
			}

			r.transactionFinished(late, 0x40)
			for p, st := range r.mu.parts {
				if len(st.pending) != 0 || st.upTo != 0x40 {
					t.Errorf("partition %d after the late end: pending %v, up to %v", p, st.pending, st.upTo)
				}
			}
			if r.mu.ended != nil {
				t.Errorf("still collecting ended transactions after the answer")
			}
		})
	}
}

// An outdated storage asks for the unfinished transactions only once the
// master knows it is ready (startStorageCell fails otherwise), and then
// replicates.
func TestOutdatedStorageAsksUnfinishedAfterReady(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	_, fc := startStorageCell(t, ctx, filepath.Join(t.TempDir(), "s.sqlite"), proto.OUT_OF_DATE)
	for {
		r, err := fc.master.Recv(ctx)
		if err != nil {
			t.Fatalf("waiting for AskUnfinishedTransactions: %v", err)
		}
		if m, ok := r.Msg.(*proto.AskUnfinishedTransactions); ok {
			if !slices.Equal(m.Offsets, []uint32{0}) {
				t.Fatalf("AskUnfinishedTransactions(%v), want [0]", m.Offsets)
			}
			return
		}
	}
}
