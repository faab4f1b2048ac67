//go:build integration

package pickleref

// Tests against ZODB itself (the peers of ../shared/peers, located by
// NEO_PEERS as `make integration` sets it, else beside the module):
// testdata/zodbrefs.py writes records with ZODB's serializer, we list
// and rewrite their references, and ZODB's referencesf and unpickler
// check what we wrote. They skip without the peers, except under CI=true.

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/neogo/neo/filestorage"
	"github.com/neogo/neo/internal/peerpy"
	"github.com/neogo/neo/proto"
)

// python runs testdata/zodbrefs.py with the peers' Python, stdin as its
// input, and returns its stdout.
func python(t *testing.T, stdin []byte, args ...string) []byte {
	t.Helper()
	if stdin == nil {
		stdin = []byte{}
	}
	out, err := peerpy.Run(t, stdin, nil, append([]string{"testdata/zodbrefs.py"}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Our References and ZODB's referencesf agree on fresh ZODB records.
func TestZODBReferencesf(t *testing.T) {
	for _, z := range parseRecords(t, bytes.NewReader(python(t, nil, "gen"))) {
		got, err := References(unhex(t, z.Record))
		if err != nil {
			t.Errorf("%s: %v", z.Name, err)
			continue
		}
		if !slices.Equal(oidsHex(got), z.Referencesf) {
			t.Errorf("%s: References = %v, referencesf = %v", z.Name, oidsHex(got), z.Referencesf)
		}
	}
}

// Records we rewrote unpickle, with ZODB's unpickler, to the original
// values with mapped references, and referencesf gives the mapped oids:
// an oid shift, mount points, a merged database.
func TestZODBRewrite(t *testing.T) {
	recs := parseRecords(t, bytes.NewReader(python(t, nil, "gen")))
	// Handmade records for the rarer paths: rebuilt ids, copied class
	// hints, protocol 0 and 1 forms.
	for name, rec := range map[string][]byte{
		"spec-example":     specExample,
		"oid-as-data":      p(class1, "](", proto.Oid(3), "q\x01h\x00\x86Qh\x01e."),
		"tuple-class-hint": p(class1, "](", proto.Oid(3), "q\x01(U\x01mU\x01Ct\x86Qh\x01e."),
		"global-not-memo":  p(class1, "](", proto.Oid(3), "q\x01cpersistent.mapping\nPersistentMapping\n\x86Qh\x01e."),
		"persid":           p(class1, "P\x00\x00\x00\x00\x00\x00\x00\x05\n."),
		"legacy-weak":      p(class1, "](", oid8(7), "eQ."),
		"protocol-1":       p("cpersistent.mapping\nPersistentMapping\nq\x00.]q\x01((", oid8(3), "q\x02h\x00tq\x03Q(h\x02h\x00tQe."),
		"protocol-0":       p("cpersistent.mapping\nPersistentMapping\np0\n.(dp1\nVdata\np2\n(S'\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x03'\np3\ng0\ntp4\nQs."),
		"named-weak":       p(class1, "\x80\x03](", text("w"), proto.Oid(7), text("other"), "\x86eQ."),
	} {
		recs = append(recs, zodbRecord{Name: "handmade/" + name, Record: hex.EncodeToString(rec)})
	}
	mergeOther := func(r Ref) (Ref, error) {
		switch r.DB {
		case "":
			r.Oid += 0x1000
		case "other":
			r.Oid += 0x50000
			r.DB = ""
			switch r.Form {
			case FormCrossClass:
				r.Form = FormOidClass
			case FormCross:
				r.Form = FormOid
			}
		}
		return r, nil
	}
	type check struct {
		Name   string            `json:"name"`
		Orig   string            `json:"orig"`
		New    string            `json:"new"`
		Offset uint64            `json:"offset"`
		Mount  map[string]string `json:"mount,omitempty"`
		Merge  map[string]uint64 `json:"merge,omitempty"`
	}
	var in bytes.Buffer
	enc := json.NewEncoder(&in)
	n := 0
	for _, tc := range []struct {
		name  string
		f     Mapper
		shift uint64
		mount map[proto.Oid]proto.Oid
		merge map[string]uint64
	}{
		{name: "shift", shift: 0x1_0000_0000},
		{name: "small-shift", shift: 3},
		{name: "mount", shift: 0x1000, mount: map[proto.Oid]proto.Oid{1: 0x99, 3: 0x2_0000}},
		{name: "merge", shift: 0x1000, f: mergeOther, merge: map[string]uint64{"other": 0x50000}},
	} {
		f := tc.f
		if f == nil {
			f = (&Shift{Offset: tc.shift, Mount: tc.mount}).Map
		}
		mount := map[string]string{}
		for k, v := range tc.mount {
			kb, vb := k.Bytes(), v.Bytes()
			mount[hex.EncodeToString(kb[:])] = hex.EncodeToString(vb[:])
		}
		for _, z := range recs {
			rec := unhex(t, z.Record)
			out, err := Rewrite(nil, rec, f)
			if err != nil {
				t.Fatalf("%s %s: %v", tc.name, z.Name, err)
			}
			if err := enc.Encode(check{Name: tc.name + ":" + z.Name, Orig: z.Record, New: hex.EncodeToString(out),
				Offset: tc.shift, Mount: mount, Merge: tc.merge}); err != nil {
				t.Fatal(err)
			}
			n++
		}
	}
	out := python(t, in.Bytes(), "check")
	ok := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if strings.HasPrefix(line, "ok ") {
			ok++
		} else {
			t.Error(line)
		}
	}
	if ok != n {
		t.Errorf("%d records checked by ZODB, %d ok", n, ok)
	}
	fmt.Fprintf(os.Stderr, "ZODB checked %d rewritten records\n", ok)
}

// zodbFile writes with ZODB a Data.fs of about mb MiB (zodbrefs.py fs)
// and returns its path and ZODB's referencesf of each data record, in
// file order.
func zodbFile(t *testing.T, mb int) (string, [][]string) {
	path := filepath.Join(t.TempDir(), "Data.fs")
	out := python(t, nil, "fs", path, strconv.Itoa(mb))
	var refs [][]string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var r struct{ Referencesf []string }
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatal(err)
		}
		refs = append(refs, r.Referencesf)
	}
	return path, refs
}

// forRecords calls f with the data of each data record of the file.
func forRecords(t testing.TB, path string, f func(data []byte)) {
	s, err := filestorage.Open(path, filestorage.Options{ReadOnly: true, NoIndex: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	it := s.Iterate(0)
	for {
		_, err := it.NextTxn()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		for {
			r, err := it.NextData()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Data) > 0 {
				f(r.Data)
			}
		}
	}
}

// Every record of an application's Data.fs: References as referencesf,
// and shifted records give the shifted references; then the speed of
// reading and repickling the whole file, the importer's pipeline.
func TestZODBFile(t *testing.T) {
	mb := 16
	if testing.Short() {
		mb = 2
	}
	path, want := zodbFile(t, mb)
	i := 0
	s := &Shift{Offset: 1 << 40}
	var w Rewriter
	var out []byte
	forRecords(t, path, func(data []byte) {
		got, err := References(data)
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if i >= len(want) || !slices.Equal(oidsHex(got), want[i]) {
			t.Fatalf("record %d: References %v, referencesf %v", i, oidsHex(got), want[i])
		}
		if out, err = w.Rewrite(out[:0], data, s.Map); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		shifted, err := References(out)
		if err != nil || len(shifted) != len(got) || len(out) != len(data) {
			t.Fatalf("record %d: rewritten: %v (%d refs of %d, %d bytes of %d)", i, err, len(shifted), len(got), len(out), len(data))
		}
		for k := range got {
			if shifted[k] != got[k]+1<<40 {
				t.Fatalf("record %d: ref %d = %v, want %v", i, k, shifted[k], got[k]+1<<40)
			}
		}
		i++
	})
	if i != len(want) {
		t.Fatalf("%d records, ZODB has %d", i, len(want))
	}
	// Throughput: read only, then read and repickle.
	var n int64
	forRecords(t, path, func(data []byte) { n += int64(len(data)) })
	measure := func(f func(data []byte)) float64 {
		start := time.Now()
		forRecords(t, path, f)
		return float64(n) / time.Since(start).Seconds() / 1e6
	}
	read := measure(func([]byte) {})
	both := measure(func(data []byte) {
		var err error
		if out, err = w.Rewrite(out[:0], data, s.Map); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("%d records, %.1f MB of record data: read %.0f MB/s, read and repickle %.0f MB/s", i, float64(n)/1e6, read, both)
}
