package admin

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/neogo/neo/proto"
)

func TestMasterDB(t *testing.T) {
	path := filepath.Join(t.TempDir(), "masters.json")
	db, err := openMasterDB(path)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "[]" {
		t.Errorf("new file holds %q, want []", b)
	}
	v6 := proto.Addr{Host: "::1", Port: 5001}
	must(t, db.update([]proto.Addr{addr(5000), v6, {}, addr(5000)}, nil))
	if b, _ := os.ReadFile(path); string(b) != `[["127.0.0.1",5000],["::1",5001]]` {
		t.Errorf("file holds %s", b)
	}
	must(t, db.update(nil, []proto.Addr{addr(5000), addr(6000)}))
	db, err = openMasterDB(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := db.addrs(); !reflect.DeepEqual(got, []proto.Addr{v6}) {
		t.Errorf("reloaded %v", got)
	}
	if err := os.WriteFile(path, []byte(`[["127.0.0.1"]]`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := openMasterDB(path); err == nil {
		t.Error("bad entry accepted")
	}
}

// TestDynamicMasterList: the admin finds its master in the file alone, and
// records the masters a secondary tells about.
func TestDynamicMasterList(t *testing.T) {
	secondary, primary := newFakeMaster(t), newFakeMaster(t)
	path := filepath.Join(t.TempDir(), "masters.json")
	db, err := openMasterDB(path)
	if err != nil {
		t.Fatal(err)
	}
	must(t, db.update([]proto.Addr{secondary.addr}, nil))
	n, _ := startAdmin(t, Config{DynamicMasterList: path})
	link, _ := secondary.accept(t)
	must(t, link.Send(&proto.NotPrimaryMaster{Primary: proto.Some(uint32(1)), KnownMasters: []proto.Addr{secondary.addr, primary.addr}}))
	link.Abort()
	master, r := primary.accept(t)
	primary.welcome(t, master, r, 10, proto.RUNNING)
	waitConnected(t, n, proto.RUNNING)
	db, err = openMasterDB(path)
	if err != nil {
		t.Fatal(err)
	}
	// The full node list also announced M1 at 127.0.0.1:10000.
	want := []proto.Addr{secondary.addr, primary.addr, addr(10000)}
	if got := db.addrs(); !reflect.DeepEqual(got, want) {
		t.Errorf("masters saved %v, want %v", got, want)
	}
}
