package sqlite_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage/backend"
	"github.com/neogo/neo/storage/backend/backendtest"
)

// An import inserts its transactions' rows in chunks of 64, 32, ... 1:
// every count around the chunk sizes must store each transaction's
// metadata as given.
func TestImportTransactionChunks(t *testing.T) {
	for _, n := range []int{1, 3, 64, 65, 129} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			ctx := t.Context()
			b, err := open(t, t.TempDir()+"/db.sqlite", backend.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			if err := backendtest.Setup(ctx, b, "t", 3); err != nil {
				t.Fatal(err)
			}
			txns := make([]backend.TxnMeta, n)
			for i := range txns {
				tid := proto.Tid(0x100 + i)
				txns[i] = backend.TxnMeta{Tid: tid, TTid: tid + 1, User: fmt.Appendf(nil, "u%d", i), Description: fmt.Appendf(nil, "d%d", i),
					Ext: fmt.Appendf(nil, "e%d", i), Oids: []proto.Oid{proto.Oid(i), proto.Oid(i + 1)}, Packed: i%2 == 1}
			}
			txns[0].User, txns[0].Ext = nil, nil // stored empty
			if err := b.(backend.BulkImporter).ImportTransactions(ctx, txns, nil, map[string]string{"x": "y"}); err != nil {
				t.Fatal(err)
			}
			for _, w := range txns {
				m, err := b.Transaction(ctx, w.Tid)
				if err != nil || m == nil || string(m.User) != string(w.User) || string(m.Description) != string(w.Description) ||
					string(m.Ext) != string(w.Ext) || !slices.Equal(m.Oids, w.Oids) || m.Packed != w.Packed || m.TTid != w.TTid {
					t.Errorf("transaction %s: got %+v, %v; want %+v", w.Tid, m, err, w)
				}
			}
		})
	}
}
