package pickleref

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"slices"
	"testing"

	"github.com/neogo/neo/proto"
)

// zodbRecord is a line of testdata/zodb-records.jsonl, written by
// `testdata/zodbrefs.py gen` (ZODB's serializer, and ZODB's referencesf
// of each record).
type zodbRecord struct {
	Name        string   `json:"name"`
	Proto       int      `json:"proto"`
	Record      string   `json:"record"`
	Referencesf []string `json:"referencesf"`
}

func readRecords(t testing.TB, path string) []zodbRecord {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return parseRecords(t, f)
}

func parseRecords(t testing.TB, r interface{ Read([]byte) (int, error) }) []zodbRecord {
	t.Helper()
	var recs []zodbRecord
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		var z zodbRecord
		if err := json.Unmarshal(sc.Bytes(), &z); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, z)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(recs) == 0 {
		t.Fatal("no record")
	}
	return recs
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func oidsHex(oids []proto.Oid) []string {
	s := []string{}
	for _, o := range oids {
		s = append(s, o.String())
	}
	return s
}

// References gives what ZODB's referencesf gives, on records of every era.
func TestReferencesAsZODB(t *testing.T) {
	for _, z := range readRecords(t, "testdata/zodb-records.jsonl") {
		got, err := References(unhex(t, z.Record))
		if err != nil {
			t.Errorf("%s: %v", z.Name, err)
			continue
		}
		if want := append([]string{}, z.Referencesf...); !slices.Equal(oidsHex(got), want) {
			t.Errorf("%s: References = %v, referencesf = %v", z.Name, oidsHex(got), want)
		}
	}
}

// Refs finds every form of reference in ZODB's records: the root of the
// test database holds one of each.
func TestRefsForms(t *testing.T) {
	for _, z := range readRecords(t, "testdata/zodb-records.jsonl") {
		if z.Name != "root/p3" && z.Name != "root/p1" && z.Name != "root/p2" {
			continue
		}
		refs, err := Refs(unhex(t, z.Record))
		if err != nil {
			t.Fatal(err)
		}
		forms := map[Form]int{}
		for _, r := range refs {
			forms[r.Form]++
			if (r.Form == FormCross || r.Form == FormCrossClass) && r.DB != "other" {
				t.Errorf("%s: %v: database %q, want other", z.Name, r, r.DB)
			}
		}
		for _, f := range []Form{FormOid, FormOidClass, FormWeak, FormCrossClass, FormCross} {
			if forms[f] == 0 {
				t.Errorf("%s: no %v reference in %v", z.Name, f, refs)
			}
		}
	}
}

// Shifting every record moves every reference by the offset, and
// nothing else: same length, the other bytes untouched, except where an
// oid string is also data (holder) and the reference is rebuilt.
func TestRewriteShiftZODB(t *testing.T) {
	for _, z := range readRecords(t, "testdata/zodb-records.jsonl") {
		rec := unhex(t, z.Record)
		before, err := Refs(rec)
		if err != nil {
			t.Fatal(err)
		}
		s := &Shift{Offset: 0x1_0000_0000}
		out, err := Rewrite(nil, rec, s.Map)
		if err != nil {
			t.Fatalf("%s: %v", z.Name, err)
		}
		after, err := Refs(out)
		if err != nil {
			t.Fatalf("%s: rewritten: %v", z.Name, err)
		}
		if len(after) != len(before) {
			t.Fatalf("%s: %d refs after, %d before", z.Name, len(after), len(before))
		}
		for i, r := range before {
			if r.DB == "" {
				r.Oid += 0x1_0000_0000
			}
			if after[i] != r {
				t.Errorf("%s: ref %d = %v, want %v", z.Name, i, after[i], r)
			}
		}
		if len(out) == len(rec) {
			diff := 0
			for i := range rec {
				if rec[i] != out[i] {
					diff++
				}
			}
			if diff > 8*len(before) {
				t.Errorf("%s: %d bytes differ for %d refs", z.Name, diff, len(before))
			}
		} else if z.Name[:len("holder")] != "holder" {
			t.Errorf("%s: length %d -> %d", z.Name, len(rec), len(out))
		}
		// Offset 0 changes nothing.
		same, err := Rewrite([]byte("x"), rec, (&Shift{}).Map)
		if err != nil || !bytes.Equal(same[1:], rec) {
			t.Errorf("%s: shift 0 changed the record (%v)", z.Name, err)
		}
	}
}

// p builds a record from opcodes: strings are copied, bytes too.
func p(parts ...any) []byte {
	var b []byte
	for _, x := range parts {
		switch x := x.(type) {
		case string:
			b = append(b, x...)
		case byte:
			b = append(b, x)
		case int:
			b = append(b, byte(x))
		case []byte:
			b = append(b, x...)
		case proto.Oid:
			b = append(b, 'C', 8)
			b = binary.BigEndian.AppendUint64(b, uint64(x))
		}
	}
	return b
}

// oid8 is a protocol-1 str oid literal.
func oid8(o proto.Oid) []byte {
	b := []byte{'U', 8}
	return binary.BigEndian.AppendUint64(b, uint64(o))
}

func text(s string) []byte {
	b := []byte{'X', byte(len(s)), 0, 0, 0}
	return append(b, s...)
}

const class1 = "\x80\x03cpersistent.mapping\nPersistentMapping\nq\x00."

// The example of pickle-refs.md §2: one reference of each form.
var specExample = p(class1, "\x80\x03}q\x01", text("data"), "q\x02}q\x03(",
	text("a"), proto.Oid(1), "q\x05h\x00\x86q\x06Q",
	text("b"), proto.Oid(2), "q\x08Q",
	text("w"), "](", text("w"), proto.Oid(3), "\x85eQ",
	text("m"), "](", text("m"), text("other"), proto.Oid(4), "h\x00\x87eQ",
	text("n"), "](", text("n"), text("other"), proto.Oid(5), "\x86eQ",
	"us.")

func TestSpecExample(t *testing.T) {
	refs, err := Refs(specExample)
	if err != nil {
		t.Fatal(err)
	}
	want := []Ref{
		{Form: FormOidClass, Oid: 1}, {Form: FormOid, Oid: 2}, {Form: FormWeak, Oid: 3},
		{Form: FormCrossClass, Oid: 4, DB: "other"}, {Form: FormCross, Oid: 5, DB: "other"},
	}
	if !slices.Equal(refs, want) {
		t.Fatalf("Refs = %v, want %v", refs, want)
	}
	oids, _ := References(specExample)
	if !slices.Equal(oids, []proto.Oid{1, 2}) {
		t.Errorf("References = %v, want [1 2] (lists are not strong same-database refs)", oids)
	}
}

// Each rule of Rewrite, on handmade records.
func TestRewriteRules(t *testing.T) {
	merge := func(r Ref) (Ref, error) { // "other" is merged at +0x100, local oids +0x10
		switch {
		case r.DB == "other":
			r.Oid += 0x100
			r.DB = ""
			switch r.Form {
			case FormCrossClass:
				r.Form = FormOidClass
			case FormCross:
				r.Form = FormOid
			}
		case r.DB == "":
			r.Oid += 0x10
		}
		return r, nil
	}
	mount := (&Shift{Offset: 0x10, Mount: map[proto.Oid]proto.Oid{1: 0x99}}).Map
	for _, tt := range []struct {
		name string
		rec  []byte
		f    Mapper
		want []Ref
		same bool // same length
	}{
		{"spec example shifted in place", specExample, (&Shift{Offset: 0x10}).Map,
			[]Ref{{FormOidClass, 0x11, ""}, {FormOid, 0x12, ""}, {FormWeak, 0x13, ""}, {FormCrossClass, 4, "other"}, {FormCross, 5, "other"}}, true},
		{"mount point loses its class hint", specExample, mount,
			[]Ref{{FormOid, 0x99, ""}, {FormOid, 0x12, ""}, {FormWeak, 0x13, ""}, {FormCrossClass, 4, "other"}, {FormCross, 5, "other"}}, false},
		{"merged database: cross-database refs made local", specExample, merge,
			[]Ref{{FormOidClass, 0x11, ""}, {FormOid, 0x12, ""}, {FormWeak, 0x13, ""}, {FormOidClass, 0x104, ""}, {FormOid, 0x105, ""}}, false},
		{"named weak ref made local",
			p(class1, "\x80\x03](", text("w"), proto.Oid(7), text("other"), "\x86eQ."), merge,
			[]Ref{{FormWeak, 0x107, ""}}, false},
		{"legacy weak ref",
			p(class1, "](", oid8(7), "eQ."), (&Shift{Offset: 1}).Map,
			[]Ref{{FormLegacyWeak, 8, ""}}, true},
		{"protocol 1 str oids, memo shared with the class pickle",
			p("cpersistent.mapping\nPersistentMapping\nq\x00.]q\x01((", oid8(3), "q\x02h\x00tq\x03Q(h\x02h\x00tQe."), (&Shift{Offset: 1}).Map,
			[]Ref{{FormOidClass, 4, ""}, {FormOidClass, 4, ""}}, true},
		{"oid string also stored as data: rebuilt, data kept",
			p(class1, "](", proto.Oid(3), "q\x01h\x00\x86Qh\x01e."), (&Shift{Offset: 1}).Map,
			[]Ref{{FormOidClass, 4, ""}}, false},
		{"one oid string in two refs mapped differently",
			p(class1, "\x80\x03](", proto.Oid(3), "q\x01h\x00\x86Q](", text("n"), text("other"), "h\x01\x86eQe."), merge,
			[]Ref{{FormOidClass, 0x13, ""}, {FormOid, 0x103, ""}}, false},
		{"text PERSID", p(class1, "P\x00\x00\x00\x00\x00\x00\x00\x05\n."), (&Shift{Offset: 1}).Map,
			[]Ref{{FormOid, 6, ""}}, false},
		{"reference in the class pickle (a persistent class)",
			p("\x80\x03", proto.Oid(9), "q\x00QN\x86.\x80\x03}q\x01."), (&Shift{Offset: 1}).Map,
			[]Ref{{FormOid, 10, ""}}, true},
		{"(module, name) class hint, not memoized, copied into a rebuilt id",
			p(class1, "](", proto.Oid(3), "q\x01(U\x01mU\x01Ct\x86Qh\x01e."), (&Shift{Offset: 1}).Map,
			[]Ref{{FormOidClass, 4, ""}}, false},
		{"class hint copied when not memoized",
			p(class1, "](", proto.Oid(3), "cm\nC\n\x86Qe."), mount,
			[]Ref{{FormOidClass, 0x13, ""}}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, err := Rewrite(nil, tt.rec, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Refs(out)
			if err != nil {
				t.Fatalf("rewritten %q: %v", out, err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("refs %v, want %v\nin %q", got, tt.want, out)
			}
			if (len(out) == len(tt.rec)) != tt.same {
				t.Errorf("length %d -> %d", len(tt.rec), len(out))
			}
		})
	}
}

// The data that shares the oid string keeps the old oid.
func TestRewriteKeepsDataOid(t *testing.T) {
	rec := p(class1, "](", proto.Oid(3), "q\x01h\x00\x86Qh\x01e.")
	out, err := Rewrite(nil, rec, (&Shift{Offset: 1}).Map)
	if err != nil {
		t.Fatal(err)
	}
	old := p(proto.Oid(3))[2:]
	if bytes.Count(out, old) != 1 || bytes.Count(out, p(proto.Oid(4))[2:]) != 1 || !bytes.HasSuffix(out, []byte("Qh\x01e.")) {
		t.Errorf("rewritten %q", out)
	}
}

func TestRewriteRefusesForms(t *testing.T) {
	_, err := Rewrite(nil, specExample, func(r Ref) (Ref, error) {
		if r.Form == FormOid {
			r.Form = FormWeak
		}
		return r, nil
	})
	if err == nil {
		t.Fatal("a strong reference made weak: no error")
	}
	boom := errors.New("boom")
	if _, err := Rewrite(nil, specExample, func(r Ref) (Ref, error) { return r, boom }); !errors.Is(err, boom) {
		t.Errorf("mapper error: %v", err)
	}
	if _, err := Rewrite(nil, specExample, (&Shift{Offset: 1 << 63}).Map); err != nil {
		t.Error(err)
	}
	if _, err := Rewrite(nil, p(class1, proto.Oid(^proto.Oid(0)), "Q."), (&Shift{Offset: 1}).Map); err == nil {
		t.Error("overflowing oid: no error")
	}
}

// Malformed records give an ErrPickle error.
func TestBadRecords(t *testing.T) {
	for _, tt := range []struct {
		name string
		rec  []byte
	}{
		{"empty", nil},
		{"one pickle only", []byte(class1)},
		{"trailing bytes", p(class1, "N.x")},
		{"truncated string", p(class1, "C\x08abc")},
		{"unknown opcode", p(class1, "\xff.")},
		{"protocol 4", p(class1, "\x80\x04N.")},
		{"missing memo", p(class1, "h\x07.")},
		{"pid of 7 bytes", p(class1, "C\x07abcdefgQ.")},
		{"pid int", p(class1, "K\x01Q.")},
		{"pid tuple of 3", p(class1, "(", proto.Oid(1), "NNtQ.")},
		{"pid list with a bad marker", p(class1, "](", text("x"), proto.Oid(1), "\x85eQ.")},
		{"stop on empty stack", p(class1, ".")},
		{"setitem short stack", p(class1, "}Ns.")},
		{"unterminated global", p(class1, "cmod")},
		{"bad STRING", p(class1, "S'abc\n.")},
		{"odd SETITEMS", p(class1, "}(Nu.")},
		{"negative BINSTRING", p(class1, "T\xff\xff\xff\xffN.")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Refs(tt.rec); !errors.Is(err, ErrPickle) {
				t.Errorf("Refs: %v, want ErrPickle", err)
			}
			if _, err := Rewrite(nil, tt.rec, (&Shift{Offset: 1}).Map); !errors.Is(err, ErrPickle) {
				t.Errorf("Rewrite: %v, want ErrPickle", err)
			}
		})
	}
}

// Protocol 0 text forms decode: STRING escapes, UNICODE, PUT/GET.
func TestProtocol0(t *testing.T) {
	rec := p("cpersistent.mapping\nPersistentMapping\np0\n.(dp1\nVdata\np2\n(S'\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x03'\np3\ng0\ntp4\nQs.")
	refs, err := Refs(rec)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(refs, []Ref{{FormOidClass, 3, ""}}) {
		t.Fatalf("refs %v", refs)
	}
	out, err := Rewrite(nil, rec, (&Shift{Offset: 1}).Map)
	if err != nil {
		t.Fatal(err)
	}
	if refs, _ := Refs(out); !slices.Equal(refs, []Ref{{FormOidClass, 4, ""}}) {
		t.Fatalf("rewritten refs %v in %q", refs, out)
	}
}
