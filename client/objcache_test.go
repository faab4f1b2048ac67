package client_test

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/neogo/neo/client"
	"github.com/neogo/neo/internal/neotest"
	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage/backend"
	"github.com/neogo/neo/storage/backend/objcache"
)

// Storages with an object cache (neostorage's default) serve loads and
// detect conflicts exactly while two clients take turns to load, commit
// and try a stale commit on the same objects. A storage that missed an
// invalidation would answer a load with the previous revision, or take
// the stale store's serial for the current one.
func TestCachedStorages(t *testing.T) {
	for _, tc := range []struct {
		name string
		size int64
	}{
		{"large cache", 64 << 20},
		{"cache of a few objects", 1024}, // evictions at every turn
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := neotest.Start(t, neotest.Options{Storages: 2, Replicas: 1, Partitions: 4, CacheSize: tc.size})
			cls := []*client.Client{c.Open(t, client.Config{}), c.Open(t, client.Config{})}
			ctx := opContext(t)
			const nobj, rounds = 4, 6
			oids := make([]proto.Oid, nobj)
			serials := make([]proto.Tid, nobj)
			var history [nobj][]proto.Tid // tids of each object's revisions
			for i := range oids {
				var err error
				if oids[i], err = cls[0].NewOID(ctx); err != nil {
					t.Fatal(err)
				}
			}
			data := func(i, round int) []byte { return fmt.Appendf(nil, "object %d round %d", i, round) }
			for r := range rounds {
				writer, reader := cls[r%2], cls[(r+1)%2]
				for i, oid := range oids {
					if serials[i] != proto.ZeroTid {
						// The reader's load fills the storage's cache.
						obj, err := reader.Load(ctx, oid, proto.InvalidTid)
						if err != nil || obj.Serial != serials[i] {
							t.Fatalf("round %d: load %v = serial %v, %v; want %v", r, oid, obj.Serial, err, serials[i])
						}
					}
					old := serials[i]
					tid, err := neotest.Commit(ctx, writer, oid, old, data(i, r))
					if err != nil {
						t.Fatalf("round %d: commit %v on %v: %v", r, oid, old, err)
					}
					serials[i] = tid
					history[i] = append(history[i], tid)
					if err := reader.Sync(ctx); err != nil {
						t.Fatal(err)
					}
					obj, err := reader.Load(ctx, oid, proto.InvalidTid)
					if err != nil || obj.Serial != tid || !bytes.Equal(obj.Data, data(i, r)) {
						t.Fatalf("round %d: load %v after commit %v = %q serial %v, %v", r, oid, tid, obj.Data, obj.Serial, err)
					}
					if old == proto.ZeroTid {
						continue
					}
					_, err = neotest.Commit(ctx, reader, oid, old, []byte("stale"))
					var ce *client.ConflictError
					if !errors.As(err, &ce) || ce.Serial != tid {
						t.Fatalf("round %d: store of %v on old serial %v: %v; want a conflict with %v", r, oid, old, err, tid)
					}
				}
			}
			// Older revisions, through the "before" and "at" forms.
			for i, oid := range oids {
				for k := 1; k < len(history[i]); k++ {
					obj, err := cls[0].Load(ctx, oid, history[i][k])
					if err != nil || obj.Serial != history[i][k-1] || obj.NextSerial != history[i][k] {
						t.Errorf("load %v before %v = serial %v next %v, %v", oid, history[i][k], obj.Serial, obj.NextSerial, err)
					}
					obj, err = cls[1].LoadSerial(ctx, oid, history[i][k-1])
					if err != nil || !bytes.Equal(obj.Data, data(i, k-1)) {
						t.Errorf("load %v at %v = %q, %v", oid, history[i][k-1], obj.Data, err)
					}
				}
			}
			var hits uint64
			for _, b := range []backend.Backend{c.Backend(0), c.Backend(1)} {
				st, ok := objcache.StatsOf(b)
				if !ok {
					t.Fatalf("storage backend %T has no cache", b)
				}
				hits += st.Hits
			}
			if hits == 0 {
				t.Errorf("no cache hit on any storage")
			}
		})
	}
}
