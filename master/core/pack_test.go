package core

import (
	"testing"

	"github.com/neogo/neo/proto"
)

// A backup master told that an order was signed asks for it; our
// storages may have completed it meanwhile (a small database packs in
// milliseconds): it must still be answered, or the backup never learns
// the order and its storages never pack (seen 1 run in 4 of
// TestBackupPack: AnswerPackOrders empty in the upstream master's
// packet log).
func TestPackOrderCompletedStillForBackups(t *testing.T) {
	pm := newPackManager()
	if !pm.newOrder(100, proto.Opt[[]proto.Oid]{}, 50) {
		t.Fatal("first order not approved at once")
	}
	pm.newOrder(200, proto.Opt[[]proto.Oid]{}, 150)
	pm.completed(100)
	if got := pm.dump(100, false); len(got) != 1 || got[0].ID != 200 {
		t.Fatalf("pending orders from 100: %v", got)
	}
	got := pm.dumpForBackup(100)
	if len(got) != 2 || got[0].ID != 100 || got[1].ID != 200 || !got[0].Approved.Valid || !got[0].Approved.V || got[0].PackTid != 50 {
		t.Fatalf("orders for a backup from 100: %+v, want the completed 100 (approved, pack tid 50) then 200", got)
	}
	if got := pm.dumpForBackup(101); len(got) != 1 || got[0].ID != 200 {
		t.Fatalf("orders for a backup from 101: %+v", got)
	}
	for id := proto.Tid(300); id < 300+2*keptDone; id++ {
		pm.newOrder(id, proto.Opt[[]proto.Oid]{}, 1)
		pm.completed(id)
	}
	if len(pm.done) != keptDone {
		t.Fatalf("%d completed orders kept, want %d", len(pm.done), keptDone)
	}
}
