package nodehttp

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/neogo/neo/filestorage"
	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage"
	"github.com/neogo/neo/storage/backend"
	"github.com/neogo/neo/storage/backend/importer"
	"github.com/neogo/neo/storage/backend/objcache"
)

// TestImportMetrics: a storage of the Importer backend, behind the
// object cache as neostorage wraps it, reports its import done once it
// imported a Data.fs.
func TestImportMetrics(t *testing.T) {
	dir := t.TempDir()
	fs, err := filestorage.Open(filepath.Join(dir, "root.fs"), filestorage.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	t0 := proto.TidFromTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	for i := range 20 {
		tw, err := fs.Begin(filestorage.TxnMeta{Tid: t0 + proto.Tid(i)<<32})
		if err != nil {
			t.Fatal(err)
		}
		// A pickle of a str, enough for the importer (no references).
		if err := tw.Store(filestorage.Record{Oid: proto.Oid(i), Data: fmt.Appendf(nil, "\x80\x03X\x05\x00\x00\x00v%04d.", i)}); err != nil {
			t.Fatal(err)
		}
		if err := tw.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	if err := fs.Close(); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "importer.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, "[neo]\nadapter=SQLite\ndatabase=%s/neo.sqlite\n[root]\nstorage=\n  <filestorage>\n    path %s/root.fs\n    read-only true\n  </filestorage>\n", dir, dir), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	im, err := importer.Open(ctx, conf, importer.Options{CommitInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	db := objcache.Wrap(im, 1<<20)
	defer db.Close()
	nid := proto.NewNodeID(proto.STORAGE, 1)
	if err := im.SetMeta(ctx, backend.Meta{Name: "test", NID: nid, BackupTid: proto.InvalidTid, TruncateTid: proto.InvalidTid}); err != nil {
		t.Fatal(err)
	}
	if err := im.ChangePartitionTable(ctx, 1, 0, []backend.CellChange{{Partition: 0, NID: nid, State: proto.UP_TO_DATE}}, true); err != nil {
		t.Fatal(err)
	}
	read := func() map[string]float64 {
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectorFunc(func(ch chan<- prometheus.Metric) { collectWork(ch, &storage.Status{}, db) }))
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]float64{}
		for _, mf := range mfs {
			for _, x := range mf.GetMetric() {
				m[mf.GetName()] = x.GetGauge().GetValue()
			}
		}
		return m
	}
	for {
		m := read()
		if r, d := m["neo_storage_import_progress_ratio"], m["neo_storage_import_done"]; d == 1 && r == 1 {
			break
		} else if ctx.Err() != nil {
			t.Fatalf("import: ratio %v, done %v (present: %v)", r, d, m)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// collectorFunc is an unchecked collector of f.
type collectorFunc func(ch chan<- prometheus.Metric)

func (collectorFunc) Describe(chan<- *prometheus.Desc)      {}
func (f collectorFunc) Collect(ch chan<- prometheus.Metric) { f(ch) }
