// Package backendtest is the conformance suite every storage backend runs,
// and the benchmarks that compare them.
//
// A backend's test calls [RunConformance] with an [Opener]; the suite
// creates databases in temporary directories, reopens them to check what
// is persisted, and re-executes the test binary to kill a committing
// process with SIGKILL (see crash.go).
package backendtest

import (
	"bytes"
	"context"
	"crypto/sha1"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage/backend"
)

// Opener opens (creating if needed) the backend whose files live at path,
// a file name inside a temporary directory owned by the suite.
type Opener func(t testing.TB, path string, opts backend.Options) (backend.Backend, error)

// Fixture constants: databases have NP partitions, all UP_TO_DATE on Me.
const NP = 4

var Me = proto.NewNodeID(proto.STORAGE, 1)

type env struct {
	t    testing.TB
	open Opener
	path string
	opts backend.Options
	b    backend.Backend
	ctx  context.Context
}

// newEnv opens a fresh backend with NID Me and a partition table of NP
// readable partitions.
func newEnv(t testing.TB, open Opener, opts backend.Options) *env {
	t.Helper()
	e := &env{t: t, open: open, path: filepath.Join(t.TempDir(), "db"), opts: opts, ctx: context.Background()}
	e.reopen()
	t.Cleanup(func() {
		if e.b != nil {
			e.b.Close()
		}
	})
	e.must(Setup(e.ctx, e.b, "test", NP))
	return e
}

// Setup makes b, a new database, node [Me]'s in cluster name, with a
// partition table (ptid 1, no replica) of np partitions all UP_TO_DATE
// on Me: where the tests of a backend start from.
func Setup(ctx context.Context, b backend.Backend, name string, np uint32) error {
	if err := b.SetMeta(ctx, backend.Meta{Name: name, NID: Me, BackupTid: proto.InvalidTid, TruncateTid: proto.InvalidTid}); err != nil {
		return fmt.Errorf("set up database of cluster %s: %w", name, err)
	}
	cells := make([]backend.CellChange, np)
	for p := range np {
		cells[p] = backend.CellChange{Partition: p, NID: Me, State: proto.UP_TO_DATE}
	}
	if err := b.ChangePartitionTable(ctx, 1, 0, cells, true); err != nil {
		return fmt.Errorf("set up %d partitions of cluster %s: %w", np, name, err)
	}
	return nil
}

// reopen closes the backend (if open) and opens it again.
func (e *env) reopen() {
	e.t.Helper()
	if e.b != nil {
		e.must(e.b.Close())
		e.b = nil
	}
	opts := e.opts
	opts.Reset = false
	b, err := e.open(e.t, e.path, opts)
	if err != nil {
		e.t.Fatalf("open %s: %v", e.path, err)
	}
	e.b = b
}

func (e *env) must(err error) {
	e.t.Helper()
	if err != nil {
		e.t.Fatal(err)
	}
}

// rec returns a record of oid carrying data (nil data: a deletion).
func rec(oid proto.Oid, data []byte) backend.Record {
	r := backend.Record{Oid: oid, DataSerial: proto.InvalidTid}
	if data != nil {
		r.Data = data
		r.Checksum = sha1.Sum(data)
	}
	return r
}

func oidsOf(recs []backend.Record) []proto.Oid {
	var oids []proto.Oid
	for _, r := range recs {
		oids = append(oids, r.Oid)
	}
	return oids
}

// commit votes, locks and unlocks a transaction whose ttid is tid.
func (e *env) commit(tid proto.Tid, recs ...backend.Record) {
	e.t.Helper()
	e.commitAs(tid, tid, recs...)
}

func (e *env) commitAs(ttid, tid proto.Tid, recs ...backend.Record) {
	e.t.Helper()
	meta := &backend.TxnMeta{TTid: ttid, User: []byte("user"), Description: []byte(fmt.Sprintf("txn %s", tid)),
		Ext: []byte{}, Oids: oidsOf(recs)}
	e.must(e.b.StoreTransaction(e.ctx, ttid, recs, meta))
	e.must(e.b.LockTransaction(e.ctx, ttid, tid, false))
	e.must(e.b.UnlockTransaction(e.ctx, ttid, tid))
}

// load checks a Load answer.
func (e *env) load(oid proto.Oid, at, before proto.Tid) (*backend.Object, error) {
	e.t.Helper()
	o, err := e.b.Load(e.ctx, oid, at, before)
	if err == nil && o.HasData() && sha1.Sum(o.Data) != o.Checksum {
		e.t.Errorf("load %s at %s before %s: checksum %x does not match data", oid, at, before, o.Checksum)
	}
	return o, err
}

type want struct {
	serial, next, dataSerial proto.Tid
	data                     []byte // nil: no data
}

func (e *env) wantLoad(oid proto.Oid, at, before proto.Tid, w want) {
	e.t.Helper()
	o, err := e.load(oid, at, before)
	if err != nil {
		e.t.Errorf("load %s at %s before %s: %v", oid, at, before, err)
		return
	}
	if o.Oid != oid || o.Serial != w.serial || o.NextSerial != w.next || o.DataSerial != w.dataSerial {
		e.t.Errorf("load %s at %s before %s: serial %s next %s data_serial %s, want %s %s %s",
			oid, at, before, o.Serial, o.NextSerial, o.DataSerial, w.serial, w.next, w.dataSerial)
	}
	if w.data == nil {
		if o.HasData() || o.Compression != 0 {
			e.t.Errorf("load %s at %s before %s: data %q (compression %d, checksum %x), want none", oid, at, before, o.Data, o.Compression, o.Checksum)
		}
	} else if !bytes.Equal(o.Data, w.data) {
		e.t.Errorf("load %s at %s before %s: data %q, want %q", oid, at, before, o.Data, w.data)
	}
}

func (e *env) wantLoadErr(oid proto.Oid, at, before proto.Tid, target error) {
	e.t.Helper()
	o, err := e.load(oid, at, before)
	if !errors.Is(err, target) {
		e.t.Errorf("load %s at %s before %s: %+v, %v; want %v", oid, at, before, o, err, target)
	}
}

func (e *env) stats() backend.Stats {
	e.t.Helper()
	sr, ok := e.b.(backend.StatsReporter)
	if !ok {
		e.t.Skip("backend does not implement StatsReporter")
	}
	s, err := sr.Stats(e.ctx)
	e.must(err)
	return s
}

func (e *env) locked() map[proto.Tid]proto.Tid {
	e.t.Helper()
	m, err := e.b.LockedTransactions(e.ctx)
	e.must(err)
	return m
}

const none = proto.InvalidTid

func tidList(xs ...proto.Tid) []proto.Tid { return xs }

func eqTids(a, b []proto.Tid) bool { return slices.Equal(a, b) }

// allPartitions lists 0..NP-1.
func allPartitions() []uint32 {
	var ps []uint32
	for p := uint32(0); p < NP; p++ {
		ps = append(ps, p)
	}
	return ps
}
