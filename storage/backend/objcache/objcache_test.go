package objcache

import (
	"bytes"
	"context"
	"crypto/sha1"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage/backend"
	"github.com/neogo/neo/storage/backend/backendtest"
	"github.com/neogo/neo/storage/backend/sqlite"
)

func openSQLite(t testing.TB, path string, opts backend.Options) (backend.Backend, error) {
	return sqlite.Open(t.Context(), "sqlite://"+path, opts)
}

func opener(maxBytes int64) backendtest.Opener {
	return func(t testing.TB, path string, opts backend.Options) (backend.Backend, error) {
		b, err := openSQLite(t, path, opts)
		if err != nil {
			return nil, err
		}
		return Wrap(b, maxBytes), nil
	}
}

// The whole conformance suite through the cache: every Load of it then
// runs against the cache too.
func TestConformance(t *testing.T) {
	backendtest.RunConformance(t, opener(8<<20))
}

// A cache of a few entries: the suite's loads then also go through
// evictions.
func TestConformanceTinyCache(t *testing.T) {
	backendtest.RunConformance(t, opener(3*(entryOverhead+8)))
}

func TestWrapZeroIsIdentity(t *testing.T) {
	b, err := openSQLite(t, t.TempDir()+"/db", backend.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, n := range []int64{0, -1} {
		if got := Wrap(b, n); got != b {
			t.Errorf("Wrap(b, %d) = %T, want b itself", n, got)
		}
	}
	w := Wrap(b, 1<<20)
	if _, ok := w.(backend.StatsReporter); !ok {
		t.Errorf("Wrap of a StatsReporter is %T, not a StatsReporter", w)
	}
	if _, ok := StatsOf(w); !ok {
		t.Errorf("StatsOf(Wrap(b)) not ok")
	}
	if _, ok := StatsOf(b); ok {
		t.Errorf("StatsOf(b) ok for an unwrapped backend")
	}
}

// np is the number of partitions of the test databases.
const np = 4

var me = backendtest.Me // the node of backendtest.Setup

// fixture is a cache over SQLite with np readable partitions.
type fixture struct {
	t   testing.TB
	ctx context.Context
	raw backend.Backend // the wrapped backend
	c   *cache
	b   backend.Backend // c as returned by Wrap
}

func newFixture(t testing.TB, maxBytes int64) *fixture {
	t.Helper()
	raw, err := openSQLite(t, t.TempDir()+"/db", backend.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, ctx: context.Background(), raw: raw, b: Wrap(raw, maxBytes)}
	f.c = f.b.(*statsCache).cache
	t.Cleanup(func() { f.b.Close() })
	f.must(backendtest.Setup(f.ctx, f.b, "t", np))
	return f
}

func cells(n int) []backend.CellChange {
	var cs []backend.CellChange
	for p := range uint32(n) {
		cs = append(cs, backend.CellChange{Partition: p, NID: me, State: proto.UP_TO_DATE})
	}
	return cs
}

func (f *fixture) must(err error) {
	f.t.Helper()
	if err != nil {
		f.t.Fatal(err)
	}
}

// payload is the data of oid at serial (nil: a deletion).
func payload(oid proto.Oid, serial proto.Tid) []byte {
	return fmt.Appendf(nil, "oid %d serial %d", oid, serial)
}

func rec(oid proto.Oid, serial proto.Tid, deleted bool) backend.Record {
	r := backend.Record{Oid: oid, Serial: serial, DataSerial: proto.InvalidTid}
	if !deleted {
		r.Data = payload(oid, serial)
		r.Checksum = sha1.Sum(r.Data)
	}
	return r
}

// vote stores and locks revisions of oids as transaction tid on b.
func vote(t testing.TB, b backend.Backend, tid proto.Tid, oids ...proto.Oid) {
	t.Helper()
	var recs []backend.Record
	for _, oid := range oids {
		recs = append(recs, rec(oid, tid, false))
	}
	ctx := context.Background()
	if err := b.StoreTransaction(ctx, tid, recs, &backend.TxnMeta{TTid: tid, Oids: oids}); err != nil {
		t.Fatal(err)
	}
	if err := b.LockTransaction(ctx, tid, tid, false); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) commit(tid proto.Tid, oids ...proto.Oid) {
	f.t.Helper()
	vote(f.t, f.b, tid, oids...)
	f.must(f.b.UnlockTransaction(f.ctx, tid, tid))
}

// wantLatest checks Load(oid) and LastObjectTid(oid) against serial
// (InvalidTid: the oid must not exist).
func (f *fixture) wantLatest(oid proto.Oid, serial proto.Tid) {
	f.t.Helper()
	o, err := f.b.Load(f.ctx, oid, proto.InvalidTid, proto.InvalidTid)
	switch {
	case serial == proto.InvalidTid:
		if !errors.Is(err, backend.ErrOidDoesNotExist) {
			f.t.Errorf("load %v: %+v, %v; want oid does not exist", oid, o, err)
		}
	case err != nil:
		f.t.Errorf("load %v: %v", oid, err)
	case o.Serial != serial || o.NextSerial != proto.InvalidTid || !bytes.Equal(o.Data, payload(oid, serial)):
		f.t.Errorf("load %v: serial %v next %v data %q; want serial %v, latest", oid, o.Serial, o.NextSerial, o.Data, serial)
	}
	if got, err := f.b.LastObjectTid(f.ctx, oid); err != nil || got != serial {
		f.t.Errorf("last serial of %v = %v, %v; want %v", oid, got, err, serial)
	}
}

// cached loads oid's latest revision twice and checks the second load
// was a hit.
func (f *fixture) cached(oid proto.Oid, serial proto.Tid) {
	f.t.Helper()
	f.wantLatest(oid, serial)
	before, _ := StatsOf(f.b)
	f.wantLatest(oid, serial)
	if after, _ := StatsOf(f.b); after.Hits != before.Hits+2 {
		f.t.Fatalf("load and last serial of %v were not hits: %+v then %+v", oid, before, after)
	}
}

// Each path that changes committed objects invalidates what it changes:
// without the invalidation, the second wantLatest returns the cached
// revision.
func TestInvalidation(t *testing.T) {
	const oid, other = 6, 7 // partitions 2 and 3
	for _, tt := range []struct {
		name  string
		write func(f *fixture)
		want  proto.Tid // latest serial of oid after write; InvalidTid: none
		check func(f *fixture)
	}{
		{"unlock", func(f *fixture) { f.commit(0x20, oid, other) }, 0x20, nil},
		{"validate", func(f *fixture) {
			vote(f.t, f.b, 0x20, oid)
			f.must(f.b.ValidateTransaction(f.ctx, 0x20, 0x20))
		}, 0x20, nil},
		{"unlock of a transaction voted before a restart", func(f *fixture) {
			vote(f.t, f.raw, 0x20, oid)
			f.must(f.b.UnlockTransaction(f.ctx, 0x20, 0x20))
		}, 0x20, nil},
		{"validate of a transaction voted before a restart", func(f *fixture) {
			vote(f.t, f.raw, 0x20, oid)
			f.must(f.b.ValidateTransaction(f.ctx, 0x20, 0x20))
		}, 0x20, nil},
		{"replicate add", func(f *fixture) {
			f.must(f.b.ReplicateObjects(f.ctx, oid%np, []backend.Record{rec(oid, 0x20, false)}, nil, proto.InvalidTid))
		}, 0x20, nil},
		{"replicate delete", func(f *fixture) {
			f.must(f.b.ReplicateObjects(f.ctx, oid%np, nil, []backend.ObjectKey{{Tid: 0x10, Oid: oid}}, proto.InvalidTid))
		}, proto.InvalidTid, nil},
		{name: "pack", write: func(f *fixture) {
			f.commit(0x20, oid)
			for range 2 {
				if o, err := f.b.Load(f.ctx, oid, 0x10, proto.InvalidTid); err != nil || o.Serial != 0x10 {
					f.t.Fatalf("load at 0x10 = %+v, %v", o, err)
				}
			}
			if _, err := f.b.Pack(f.ctx, oid%np, 0x25, nil, 0, 100); err != nil {
				f.t.Fatal(err)
			}
		}, want: 0x20, check: func(f *fixture) {
			if o, err := f.b.Load(f.ctx, oid, 0x10, proto.InvalidTid); !errors.Is(err, backend.ErrOidNotFound) {
				f.t.Errorf("load at 0x10 after pack = %+v, %v; want not found", o, err)
			}
		}},
		{"pack of a deleted oid", func(f *fixture) {
			f.must(f.b.ReplicateObjects(f.ctx, oid%np, []backend.Record{rec(oid, 0x20, true)}, nil, proto.InvalidTid))
			for range 2 {
				if o, err := f.b.Load(f.ctx, oid, proto.InvalidTid, proto.InvalidTid); err != nil || o.Serial != 0x20 || o.HasData() {
					f.t.Fatalf("load of the deletion = %+v, %v", o, err)
				}
			}
			if s, err := f.b.LastObjectTid(f.ctx, oid); err != nil || s != 0x20 {
				f.t.Fatalf("last serial of the deletion = %v, %v", s, err)
			}
			if _, err := f.b.Pack(f.ctx, oid%np, 0x25, nil, 0, 100); err != nil {
				f.t.Fatal(err)
			}
		}, proto.InvalidTid, nil},
		{"truncate", func(f *fixture) {
			f.commit(0x20, oid)
			f.cached(oid, 0x20)
			f.must(f.b.Truncate(f.ctx, 0x10, []uint32{0, 1, 2, 3}))
		}, 0x10, nil},
		{"drop partition", func(f *fixture) {
			for done := false; !done; {
				var err error
				done, err = f.b.DropPartition(f.ctx, oid%np, 1)
				f.must(err)
			}
		}, proto.InvalidTid, nil},
		{"partition table reset", func(f *fixture) {
			// With 8 partitions, oid 6 is looked for in partition 6.
			f.must(f.b.ChangePartitionTable(f.ctx, 2, 0, cells(8), true))
		}, proto.InvalidTid, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, 1<<20)
			f.commit(0x10, oid, other)
			f.cached(oid, 0x10)
			tt.write(f)
			if tt.check != nil {
				tt.check(f)
			}
			f.wantLatest(oid, tt.want)
		})
	}
}

// Writes that change no committed object keep the cache.
func TestNoInvalidation(t *testing.T) {
	const oid = 6
	f := newFixture(t, 1<<20)
	f.commit(0x10, oid)
	f.cached(oid, 0x10)
	vote(t, f.b, 0x20, oid)
	f.must(f.b.AbortTransaction(f.ctx, 0x20))
	f.must(f.b.ReplicateTransactions(f.ctx, 1, nil, []proto.Tid{0x11}))
	f.must(f.b.SetCellTid(f.ctx, 1, 0x10))
	f.must(f.b.ChangePartitionTable(f.ctx, 2, 0, []backend.CellChange{{Partition: 1, NID: me, State: proto.OUT_OF_DATE}}, false))
	f.cached(oid, 0x10)
	if _, ok := f.c.txns.oids[0x20]; ok {
		t.Errorf("aborted ttid still remembered")
	}
}

// Pack keeps the latest revision of an oid that has data, and what is
// above the pack tid.
func TestPackKeepsLatest(t *testing.T) {
	const oid, young = 6, 10 // partition 2
	f := newFixture(t, 1<<20)
	f.commit(0x10, oid, young)
	f.commit(0x20, oid)
	f.commit(0x30, young)
	f.c.invalidateAll() // filled by loads below, not by the commits
	f.cached(oid, 0x20)
	if o, err := f.b.Load(f.ctx, young, 0x10, proto.InvalidTid); err != nil || o.NextSerial != 0x30 {
		t.Fatalf("load %v at 0x10 = %+v, %v", young, o, err)
	}
	if _, err := f.b.Pack(f.ctx, oid%np, 0x25, nil, 0, 100); err != nil {
		t.Fatal(err)
	}
	s0, _ := StatsOf(f.b)
	f.wantLatest(oid, 0x20)
	if o, err := f.b.Load(f.ctx, young, 0x10, proto.InvalidTid); err != nil || o.Serial != 0x10 {
		t.Fatalf("load %v at 0x10 after pack = %+v, %v", young, o, err)
	}
	if s1, _ := StatsOf(f.b); s1.Hits != s0.Hits+3 {
		t.Errorf("entries that pack keeps were dropped: %+v then %+v", s0, s1)
	}
}

// Loads of older revisions: hit rules of at and before.
func TestHitRules(t *testing.T) {
	const oid = 5
	f := newFixture(t, 1<<20)
	f.commit(0x10, oid)
	f.commit(0x20, oid)
	f.commit(0x30, oid)
	f.c.invalidateAll() // filled by the loads below, not by the commits
	none := proto.InvalidTid
	load := func(at, before, wantSerial, wantNext proto.Tid, hit bool) {
		t.Helper()
		s0, _ := StatsOf(f.b)
		o, err := f.b.Load(f.ctx, oid, at, before)
		if err != nil || o.Serial != wantSerial || o.NextSerial != wantNext || !bytes.Equal(o.Data, payload(oid, wantSerial)) {
			t.Errorf("load at %v before %v = %+v, %v; want serial %v next %v", at, before, o, err, wantSerial, wantNext)
			return
		}
		if s1, _ := StatsOf(f.b); (s1.Hits == s0.Hits+1) != hit {
			t.Errorf("load at %v before %v: hit = %v, want %v", at, before, s1.Hits == s0.Hits+1, hit)
		}
	}
	load(0x20, none, 0x20, 0x30, false)
	load(0x20, none, 0x20, 0x30, true)
	load(none, 0x21, 0x20, 0x30, true)
	load(none, 0x30, 0x20, 0x30, true)
	load(none, 0x20, 0x10, 0x20, false) // serial < before fails
	load(none, 0x31, 0x30, none, false) // before > next: another revision
	load(none, proto.MaxTid, 0x30, none, true)
	load(none, none, 0x30, none, true)
	// An older revision does not replace the latest one.
	load(0x10, none, 0x10, 0x20, false)
	load(none, none, 0x30, none, true)
	load(0x10, none, 0x10, 0x20, false)
}

func TestEviction(t *testing.T) {
	f := newFixture(t, 1<<20)
	f.commit(0x10, 1, 2, 3, 4)
	// A cache of 3 entries, as accounted (the capacity of the data).
	o, err := f.raw.Load(f.ctx, 1, proto.InvalidTid, proto.InvalidTid)
	f.must(err)
	per := int64(entryOverhead + cap(o.Data))
	f.c = newCache(f.raw, 3*per)
	f.b = f.c
	if len(f.c.shards) != 1 {
		t.Fatalf("%d shards for a tiny cache", len(f.c.shards))
	}
	for oid := proto.Oid(1); oid <= 3; oid++ {
		f.wantLatest(oid, 0x10)
	}
	f.wantLatest(1, 0x10) // 1 is now the most recent
	f.wantLatest(4, 0x10) // evicts 2
	s0, _ := StatsOf(f.b)
	if s0.Entries != 3 || s0.Evictions != 1 || s0.Bytes > 3*per {
		t.Errorf("after 4 oids in a cache of 3: %+v", s0)
	}
	for _, oid := range []proto.Oid{1, 3, 4} {
		f.wantLatest(oid, 0x10)
	}
	f.wantLatest(2, 0x10)
	s1, _ := StatsOf(f.b)
	// Load and LastObjectTid of 1, 3, 4 hit; the load of 2 misses,
	// then its LastObjectTid hits.
	if s1.Hits != s0.Hits+7 || s1.Misses != s0.Misses+1 {
		t.Errorf("want 1, 3, 4 hits and 2 a miss: %+v then %+v", s0, s1)
	}
}

func TestShardsSpread(t *testing.T) {
	c := newCache(nil, 64<<20)
	if len(c.shards) != maxShards {
		t.Fatalf("%d shards for 64 MiB", len(c.shards))
	}
	// A node holding one partition of 16 still uses every shard.
	used := map[*shard]bool{}
	for i := range 4096 {
		used[c.shard(proto.Oid(16*i+3))] = true
	}
	if len(used) != maxShards {
		t.Errorf("oids of one partition use %d shards of %d", len(used), maxShards)
	}
}

// A load that read the database before a commit must not install its
// stale answer after the commit's invalidation. The writer runs in the
// hook between the backend's Load and the insertion.
func TestFillRace(t *testing.T) {
	const oid = 6
	for _, tt := range []struct {
		name  string
		write func(f *fixture)
	}{
		{"unlock", func(f *fixture) { f.commit(0x20, oid) }},
		{"unlock of unknown ttid", func(f *fixture) {
			vote(f.t, f.raw, 0x20, oid)
			f.must(f.b.UnlockTransaction(f.ctx, 0x20, 0x20))
		}},
		{"replicate", func(f *fixture) {
			f.must(f.b.ReplicateObjects(f.ctx, oid%np, []backend.Record{rec(oid, 0x20, false)}, nil, proto.InvalidTid))
		}},
		{"other oid of the shard", func(f *fixture) {
			// The generation is per shard: a commit of any oid of the
			// shard drops the fill (conservative, and cheap).
			for o := proto.Oid(oid + 1); ; o++ {
				if f.c.shard(o) == f.c.shard(oid) {
					f.commit(0x20, o, oid)
					return
				}
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, 1<<20)
			f.commit(0x10, oid)
			f.c.invalidateAll() // the commit cached it: the load must fill
			var once sync.Once
			f.c.afterLoad = func(o proto.Oid) {
				if o == oid {
					once.Do(func() { tt.write(f) })
				}
			}
			o, err := f.b.Load(f.ctx, oid, proto.InvalidTid, proto.InvalidTid)
			if err != nil || o.Serial != 0x10 {
				t.Fatalf("load racing the commit = %+v, %v; want the revision before it", o, err)
			}
			f.wantLatest(oid, 0x20)
		})
	}
}

// An unlock caches the revisions it wrote with data (write-through), with
// their final tid: the next loads and conflict checks are hits. Undo
// records and deletions are only invalidated; an abort caches nothing.
func TestWriteThrough(t *testing.T) {
	f := newFixture(t, 1<<20)
	f.commit(0x10, 1, 2)
	st, _ := StatsOf(f.b)
	if st.Entries != 2 {
		t.Fatalf("after a commit of 2 oids: %d entries, want 2", st.Entries)
	}
	f.cached(1, 0x10)
	if after, _ := StatsOf(f.b); after.Misses != st.Misses {
		t.Fatalf("loads after the commit missed: %+v then %+v", st, after)
	}
	// Voted as ttid 0x18, committed as 0x20: cached under the final tid.
	vote(t, f.b, 0x18, 1)
	f.must(f.b.UnlockTransaction(f.ctx, 0x18, 0x20))
	o, err := f.b.Load(f.ctx, 1, proto.InvalidTid, proto.InvalidTid)
	f.must(err)
	if o.Serial != 0x20 || !bytes.Equal(o.Data, payload(1, 0x18)) {
		t.Fatalf("after the commit of ttid 0x18 as 0x20: serial %v data %q", o.Serial, o.Data)
	}
	f.wantFromDB(1)

	// A deletion and an undo record are not cached.
	undo := backend.Record{Oid: 2, DataSerial: 0x10}
	f.must(f.b.StoreTransaction(f.ctx, 0x30, []backend.Record{rec(1, 0x30, true), undo}, &backend.TxnMeta{TTid: 0x30, Oids: []proto.Oid{1, 2}}))
	f.must(f.b.LockTransaction(f.ctx, 0x30, 0x30, false))
	f.must(f.b.UnlockTransaction(f.ctx, 0x30, 0x30))
	if st, _ := StatsOf(f.b); st.Entries != 0 {
		t.Fatalf("a deletion and an undo left %d entries", st.Entries)
	}
	f.wantFromDB(1)
	f.wantFromDB(2)

	// An aborted transaction caches nothing.
	f.must(f.b.StoreTransaction(f.ctx, 0x40, []backend.Record{rec(3, 0x40, false)}, &backend.TxnMeta{TTid: 0x40, Oids: []proto.Oid{3}}))
	f.must(f.b.AbortTransaction(f.ctx, 0x40))
	s := f.c.shard(3)
	s.mu.Lock()
	e := s.mu.m[3]
	s.mu.Unlock()
	if e != nil {
		t.Fatalf("an aborted transaction left an entry: %+v", e.obj)
	}
	if _, err := f.b.Load(f.ctx, 3, proto.InvalidTid, proto.InvalidTid); !errors.Is(err, backend.ErrOidDoesNotExist) {
		t.Fatalf("load of the aborted oid: %v", err)
	}
}

// wantFromDB checks that the cache answers oid's latest revision as the
// database does.
func (f *fixture) wantFromDB(oid proto.Oid) {
	f.t.Helper()
	want, werr := f.raw.Load(f.ctx, oid, proto.InvalidTid, proto.InvalidTid)
	got, gerr := f.b.Load(f.ctx, oid, proto.InvalidTid, proto.InvalidTid)
	if (werr == nil) != (gerr == nil) || (werr != nil && werr.Error() != gerr.Error()) {
		f.t.Fatalf("load %v: cache %v, database %v", oid, gerr, werr)
	}
	if werr == nil && (got.Serial != want.Serial || got.NextSerial != want.NextSerial || got.DataSerial != want.DataSerial ||
		got.Compression != want.Compression || got.Checksum != want.Checksum || !bytes.Equal(got.Data, want.Data)) {
		f.t.Fatalf("load %v: cache %+v, database %+v", oid, got, want)
	}
}

// Concurrent loads and commits: every answer is consistent, and at the end
// the cache answers what the database answers.
func TestConcurrentLoadsAndCommits(t *testing.T) {
	const (
		oids    = 32
		commits = 300
		readers = 4
	)
	f := newFixture(t, 8*(entryOverhead+32)) // evicts constantly
	var last [oids]atomic.Uint64             // latest committed serial per oid, 0 = none
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errc := make(chan error, readers+1)
	for r := range readers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(r), 1))
			for {
				select {
				case <-stop:
					return
				default:
				}
				oid := proto.Oid(rng.IntN(oids))
				floor := proto.Tid(last[oid].Load())
				if rng.IntN(4) == 0 {
					if s, err := f.b.LastObjectTid(f.ctx, oid); err != nil || (floor != 0 && s < floor) {
						errc <- fmt.Errorf("last serial of %v = %v, %v; committed %v", oid, s, err, floor)
						return
					}
					continue
				}
				before := proto.InvalidTid
				if rng.IntN(2) == 0 {
					before = proto.Tid(0x100 + rng.IntN(commits))
				}
				o, err := f.b.Load(f.ctx, oid, proto.InvalidTid, before)
				if errors.Is(err, backend.ErrOidDoesNotExist) || errors.Is(err, backend.ErrOidNotFound) {
					continue
				}
				if err != nil {
					errc <- err
					return
				}
				switch {
				case !bytes.Equal(o.Data, payload(oid, o.Serial)):
					errc <- fmt.Errorf("load %v: data %q at serial %v", oid, o.Data, o.Serial)
				case before == proto.InvalidTid && o.Serial < floor:
					errc <- fmt.Errorf("load %v: serial %v older than committed %v", oid, o.Serial, floor)
				case before != proto.InvalidTid && (o.Serial >= before || (o.NextSerial != proto.InvalidTid && o.NextSerial < before)):
					errc <- fmt.Errorf("load %v before %v: serial %v next %v", oid, before, o.Serial, o.NextSerial)
				default:
					continue
				}
				return
			}
		})
	}
	rng := rand.New(rand.NewPCG(9, 9))
	for i := range commits {
		tid := proto.Tid(0x100 + i)
		a, b := proto.Oid(rng.IntN(oids)), proto.Oid(rng.IntN(oids))
		ob := []proto.Oid{a}
		if b != a {
			ob = append(ob, b)
		}
		f.commit(tid, ob...)
		for _, oid := range ob {
			last[oid].Store(uint64(tid))
		}
	}
	close(stop)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	for oid := range proto.Oid(oids) {
		for _, before := range []proto.Tid{proto.InvalidTid, 0x100 + commits/2, 0x100 + commits/3} {
			want, werr := f.raw.Load(f.ctx, oid, proto.InvalidTid, before)
			got, gerr := f.b.Load(f.ctx, oid, proto.InvalidTid, before)
			if (werr == nil) != (gerr == nil) || (werr == nil && (got.Serial != want.Serial || got.NextSerial != want.NextSerial)) {
				t.Errorf("oid %v before %v: cache %+v, %v; database %+v, %v", oid, before, got, gerr, want, werr)
			}
		}
	}
	if s, _ := StatsOf(f.b); s.Hits == 0 || s.Evictions == 0 {
		t.Errorf("no hits or no evictions: %+v", s)
	}
}

// LoadCached answers hits like Load and reports misses without asking
// the backend.
func TestLoadCached(t *testing.T) {
	f := newFixture(t, 1<<20)
	f.commit(0x10, 1)
	cl, ok := f.b.(backend.CachedLoader)
	if !ok {
		t.Fatalf("%T is not a backend.CachedLoader", f.b)
	}
	o, ok := cl.LoadCached(1, proto.InvalidTid, 0x11)
	if !ok || o.Serial != 0x10 || !bytes.Equal(o.Data, payload(1, 0x10)) {
		t.Fatalf("LoadCached of the committed oid = %+v, %v", o, ok)
	}
	if o, ok := cl.LoadCached(1, proto.InvalidTid, 0x10); ok {
		t.Fatalf("LoadCached before its serial hit: %+v", o)
	}
	if o, ok := cl.LoadCached(2, proto.InvalidTid, proto.InvalidTid); ok {
		t.Fatalf("LoadCached of an oid never stored hit: %+v", o)
	}
	f.c.invalidateAll()
	if _, ok := cl.LoadCached(1, proto.InvalidTid, proto.InvalidTid); ok {
		t.Fatal("LoadCached hit after invalidation")
	}
}
