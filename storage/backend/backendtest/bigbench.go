package backendtest

import (
	"context"
	"crypto/sha1"
	"errors"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage/backend"
)

// BenchLoadBig benchmarks Load/random, LoadBefore/random and
// LastObjectTid/existing on the database at dsn, a file at path that it
// first fills, if missing, with objects oids of 2-3 KiB, 1000 per
// transaction (400,000 make a 1.7 GB file with their indexes):
// a database too big for the backend's page cache, so that every load
// reads its pages, as at scale (issue 15). The file is kept for the next
// run; the caller removes it.
func BenchLoadBig(b *testing.B, open Opener, dsn, path string, objects int) {
	ctx := context.Background()
	_, err := os.Stat(path)
	fresh := errors.Is(err, os.ErrNotExist)
	db, err := open(b, dsn, backend.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if fresh {
		if err := fillBig(ctx, db, objects); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("Load/random", func(b *testing.B) {
		b.ReportAllocs()
		defer cpuTime(b)()
		rng := rand.New(rand.NewPCG(9, 10))
		for b.Loop() {
			oid := proto.Oid(rng.IntN(objects))
			if _, err := db.Load(ctx, oid, none, none); err != nil {
				b.Fatalf("load %s of %d: %v", oid, objects, err)
			}
		}
	})
	// A client's load: the revision before a snapshot, here the only one.
	b.Run("LoadBefore/random", func(b *testing.B) {
		b.ReportAllocs()
		defer cpuTime(b)()
		rng := rand.New(rand.NewPCG(15, 16))
		for b.Loop() {
			oid := proto.Oid(rng.IntN(objects))
			if _, err := db.Load(ctx, oid, none, benchTid(int(oid)/bigPerTxn)+1); err != nil {
				b.Fatalf("load %s of %d: %v", oid, objects, err)
			}
		}
	})
	// The conflict check of a store of an existing object.
	b.Run("LastObjectTid/existing", func(b *testing.B) {
		b.ReportAllocs()
		defer cpuTime(b)()
		rng := rand.New(rand.NewPCG(13, 14))
		for b.Loop() {
			oid := proto.Oid(rng.IntN(objects))
			if _, err := db.LastObjectTid(ctx, oid); err != nil {
				b.Fatalf("last serial of %s of %d: %v", oid, objects, err)
			}
		}
	})
}

// bigPerTxn is the number of objects of each transaction of fillBig.
const bigPerTxn = 1000

func fillBig(ctx context.Context, db backend.Backend, objects int) error {
	if err := Setup(ctx, db, "big", NP); err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(11, 12))
	recs := make([]backend.Record, 0, bigPerTxn)
	for i := 0; i < objects; i += bigPerTxn {
		recs = recs[:0]
		for oid := i; oid < min(i+bigPerTxn, objects); oid++ {
			data := make([]byte, 2048+rng.IntN(1025))
			for j := 0; j+8 <= len(data); j += 8 {
				v := rng.Uint64()
				for k := range 8 {
					data[j+k] = byte(v >> (8 * k))
				}
			}
			recs = append(recs, backend.Record{Oid: proto.Oid(oid), Data: data, Checksum: sha1.Sum(data), DataSerial: none})
		}
		tid := benchTid(i / bigPerTxn)
		meta := &backend.TxnMeta{TTid: tid, User: []byte("big"), Oids: oidsOf(recs)}
		if err := db.StoreTransaction(ctx, tid, recs, meta); err != nil {
			return err
		}
		if err := db.LockTransaction(ctx, tid, tid, false); err != nil {
			return err
		}
		if err := db.UnlockTransaction(ctx, tid, tid); err != nil {
			return err
		}
	}
	return nil
}
