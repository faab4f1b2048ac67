//go:build integration

package importer

// Tests against ZODB's own FileStorage (the peers of ../shared/peers): a
// Data.fs with a real application history written by ZODB
// (filestorage/testdata/zodbfs.py gen: BTrees with bucket splits, undo,
// "creation undone", a pack in the middle, a deletion), and ZODB's
// answers to every load, loadBefore and loadSerial of it (zodbfs.py
// loads); the Importer must give the same answers before, during and
// after the import.

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"testing"

	"github.com/neogo/neo/importconf"
	"github.com/neogo/neo/internal/peerpy"
	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage/backend"
)

const zodbfs = "../../../filestorage/testdata/zodbfs.py"

type zodbLoad struct {
	Op     string          `json:"op"`
	Oid    string          `json:"oid"`
	Tid    *string         `json:"tid"`
	Result json.RawMessage `json:"result"`
}

func hexTid(t *testing.T, s string) proto.Tid {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 8 {
		t.Fatalf("bad tid %q", s)
	}
	var x uint64
	for _, c := range b {
		x = x<<8 | uint64(c)
	}
	return proto.Tid(x)
}

// answer is what our Load gives, in the form of zodbfs.py loads.
func answer(t *testing.T, im *Importer, l zodbLoad) string {
	oid := proto.Oid(hexTid(t, l.Oid))
	at, before := proto.InvalidTid, proto.InvalidTid
	switch l.Op {
	case "loadBefore":
		before = hexTid(t, *l.Tid)
	case "loadSerial":
		at = hexTid(t, *l.Tid)
	}
	o, err := im.Load(t.Context(), oid, at, before)
	switch {
	case l.Op == "loadBefore" && errors.Is(err, backend.ErrOidNotFound):
		return "null"
	case err != nil && (errors.Is(err, backend.ErrOidNotFound) || errors.Is(err, backend.ErrOidDoesNotExist)):
		return `"POSKeyError"`
	case err != nil:
		t.Fatalf("%s %s %v: %v", l.Op, l.Oid, l.Tid, err)
	case !o.HasData():
		return `"POSKeyError"`
	}
	data := o.Data
	if o.Compression == 1 {
		zr, err := zlib.NewReader(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		data, _ = io.ReadAll(zr)
	}
	sum := sha256.Sum256(data)
	sha := hex.EncodeToString(sum[:])
	hx := func(t proto.Tid) string {
		if t == proto.InvalidTid {
			return "null"
		}
		return fmt.Sprintf("%q", fmt.Sprintf("%016x", uint64(t)))
	}
	switch l.Op {
	case "load":
		return fmt.Sprintf(`["%s", %s]`, sha, hx(o.Serial))
	case "loadBefore":
		return fmt.Sprintf(`["%s", %s, %s]`, sha, hx(o.Serial), hx(o.NextSerial))
	}
	return `"` + sha + `"`
}

func TestZODBFileReads(t *testing.T) {
	dir := t.TempDir()
	fs := filepath.Join(dir, "Data.fs")
	if _, err := peerpy.Run(t, nil, nil, zodbfs, "gen", fs); err != nil {
		t.Fatal(err)
	}
	out, err := peerpy.Run(t, nil, nil, zodbfs, "loads", fs)
	if err != nil {
		t.Fatal(err)
	}
	var loads []zodbLoad
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l zodbLoad
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatal(err)
		}
		loads = append(loads, l)
	}
	conf, err := importconf.Parse("importer.conf", []byte(fmt.Sprintf(`[neo]
adapter=SQLite
database=%s/neo.sqlite
[root]
storage=
  <filestorage>
    path %s
  </filestorage>
`, dir, fs)), nil)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, ctx: t.Context(), dir: dir, conf: conf}
	var tids []proto.Tid
	for _, l := range loads {
		if l.Op == "loadSerial" && (len(tids) == 0 || hexTid(t, *l.Tid) > tids[len(tids)-1]) {
			tids = append(tids, hexTid(t, *l.Tid))
		}
	}
	// Stops all along the history: each leaves revisions imported whose
	// successors, deletions and undos are not.
	var stops []proto.Tid
	for i := 0; i < len(tids); i += len(tids)/4 + 1 {
		stops = append(stops, tids[i])
	}
	check := func(im *Importer, when string) {
		bad := 0
		for _, l := range loads {
			got, want := answer(t, im, l), string(l.Result)
			if !jsonEqual(got, want) {
				if bad++; bad <= 10 {
					t.Errorf("%s: %s(%s, %v) = %s, ZODB: %s", when, l.Op, l.Oid, deref(l.Tid), got, want)
				}
			}
		}
	}
	for _, stop := range stops {
		im := e.open(stop)
		var before proto.Tid
		for _, x := range tids {
			if x < stop {
				before = x
			}
		}
		waitImported(t, im, before)
		check(im, fmt.Sprintf("imported up to %v", before))
		im.Close()
	}
	im := e.open(0)
	defer im.Close()
	if err := im.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	check(im, "after the import")
	t.Logf("%d answers compared at %d points", len(loads), len(stops)+1)
}

func deref(s *string) string {
	if s == nil {
		return "-"
	}
	return *s
}

func jsonEqual(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	return fmt.Sprint(x) == fmt.Sprint(y)
}
