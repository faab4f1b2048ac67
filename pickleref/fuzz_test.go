package pickleref

import (
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/neogo/neo/proto"
)

// FuzzRecord feeds arbitrary records to the machine: an error or a
// result, never a panic; and what Rewrite returns has the references
// Refs found, mapped.
func FuzzRecord(f *testing.F) {
	f.Add(specExample)
	f.Add(p(class1, "](", oid8(7), "eQ."))
	f.Add(p(class1, "](", p(specExample[len(class1)+3:len(class1)+40]), "h\x00\x86Qh\x01e."))
	f.Add(p("cpersistent.mapping\nPersistentMapping\np0\n.(dp1\nVdata\np2\n(S'\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x03'\np3\ng0\ntp4\nQs."))
	for _, z := range readRecords(f, "testdata/zodb-records.jsonl") {
		if rec := unhex(f, z.Record); len(rec) < 300 {
			f.Add(rec)
		}
	}
	f.Fuzz(func(t *testing.T, rec []byte) {
		refs, err := Refs(rec)
		if err != nil {
			if !errors.Is(err, ErrPickle) {
				t.Fatalf("error %v is not an ErrPickle", err)
			}
			return
		}
		for i, m := range []*Shift{{Offset: 0x10}, {Offset: 0x10, Mount: mountAll(refs)}, {Offset: 0x10}} {
			f := m.Map
			if i == 2 {
				f = mergeAll(m)
			}
			out, err := Rewrite(nil, rec, f)
			if err != nil {
				if !errors.Is(err, ErrPickle) && !overflows(refs, m) {
					t.Fatalf("Rewrite: %v", err)
				}
				continue
			}
			got, err := Refs(out)
			if err != nil {
				t.Fatalf("rewritten record %q: %v", out, err)
			}
			want := make([]Ref, len(refs))
			for i, r := range refs {
				want[i], _ = f(r)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("rewritten refs %v, want %v\nin %q", got, want, out)
			}
		}
	})
}

// mountAll makes the oid of the first reference a mount point.
func mountAll(refs []Ref) map[proto.Oid]proto.Oid {
	m := map[proto.Oid]proto.Oid{}
	if len(refs) > 0 {
		m[refs[0].Oid] = 0x77
	}
	return m
}

func overflows(refs []Ref, s *Shift) bool {
	for _, r := range refs {
		if _, ok := s.Mount[r.Oid]; !ok && r.DB == "" && uint64(r.Oid) > math.MaxUint64-s.Offset {
			return true
		}
	}
	return false
}

// mergeAll makes every other database local, its oids shifted as the
// record's own.
func mergeAll(s *Shift) Mapper {
	return func(r Ref) (Ref, error) {
		switch r.Form {
		case FormCrossClass:
			r.Form = FormOidClass
		case FormCross:
			r.Form = FormOid
		}
		r.DB = ""
		return s.Map(r)
	}
}
