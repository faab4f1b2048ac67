package pickleref

import (
	"encoding/binary"
	"fmt"

	"github.com/neogo/neo/proto"
)

// Form is the shape of a persistent id (pickle-refs.md §3).
type Form uint8

const (
	FormOid        Form = iota + 1 // oid: strong, no class hint
	FormOidClass                   // (oid, class): strong, with class hint
	FormWeak                       // ['w', (oid,)], or ['w', (oid, db)] into database db
	FormCrossClass                 // ['m', (db, oid, class)]: strong, into database db
	FormCross                      // ['n', (db, oid)]: strong, into database db, no class hint
	FormLegacyWeak                 // [oid]: weak reference of old records
)

var formNames = [...]string{"invalid", "oid", "(oid, class)", "['w', ...]", "['m', ...]", "['n', ...]", "[oid]"}

func (f Form) String() string {
	if int(f) < len(formNames) {
		return formNames[f]
	}
	return fmt.Sprintf("Form(%d)", f)
}

// Ref is a persistent reference of a record.
type Ref struct {
	Form Form
	Oid  proto.Oid
	// DB is the database of a cross-database reference (FormCross,
	// FormCrossClass, and FormWeak with a name); "" for the record's own.
	DB string
}

// Strong tells whether ZODB's referencesf lists the reference: a strong
// reference into the same database, the ones pack's GC follows.
func (r Ref) Strong() bool { return r.Form == FormOid || r.Form == FormOidClass }

func (r Ref) String() string {
	if r.DB != "" {
		return fmt.Sprintf("%s %s in %q", r.Form, r.Oid, r.DB)
	}
	return fmt.Sprintf("%s %s", r.Form, r.Oid)
}

// Refs returns every persistent reference of the record, in the order
// of the pickle, duplicates included.
func Refs(record []byte) ([]Ref, error) {
	var m machine
	if err := m.run(record); err != nil {
		return nil, err
	}
	refs := make([]Ref, len(m.events))
	for i, e := range m.events {
		refs[i] = e.ref
	}
	return refs, nil
}

// References returns the oids of the record's strong references into
// its own database, in order, duplicates included: what ZODB's
// serialize.referencesf returns.
func References(record []byte) ([]proto.Oid, error) {
	var m machine
	if err := m.run(record); err != nil {
		return nil, err
	}
	var oids []proto.Oid
	for _, e := range m.events {
		if e.ref.Strong() {
			oids = append(oids, e.ref.Oid)
		}
	}
	return oids, nil
}

// reference records the persistent id pid, found by the opcode at at.
func (m *machine) reference(pid int32, at, atEnd int, persid bool) error {
	e := event{at: int32(at), atEnd: int32(atEnd), persid: persid, proto: m.proto,
		oidv: -1, classv: -1, classMemo: -1, dbv: -1, markv: -1}
	bad := func(why string) error {
		return m.errorf("persistent id at %d: %s", at, why)
	}
	p := &m.vals[pid]
	e.pid, e.tup = pid, -1
	switch {
	case pid == 0:
		return bad("neither a string, a tuple nor a list")
	case p.kind == kStr:
		e.ref.Form, e.oidv = FormOid, pid
	case p.kind == kTuple:
		if p.n != 2 {
			return bad(fmt.Sprintf("tuple of %d items", p.n))
		}
		e.ref.Form, e.oidv, e.classv = FormOidClass, p.items[0], p.items[1]
	case p.kind == kList:
		switch {
		case p.n == 1:
			e.ref.Form, e.oidv = FormLegacyWeak, p.items[0]
		case p.n == 2:
			e.markv = p.items[0]
			mk := &m.vals[e.markv]
			if e.markv == 0 || mk.kind != kStr || mk.b-mk.a != 1 {
				return bad("list without a 'w', 'm' or 'n' marker")
			}
			t := &m.vals[p.items[1]]
			if p.items[1] == 0 || t.kind != kTuple {
				return bad("list without an argument tuple")
			}
			e.tup = p.items[1]
			switch c := m.bytesOf(mk)[0]; {
			case c == 'w' && (t.n == 1 || t.n == 2):
				e.ref.Form, e.oidv = FormWeak, t.items[0]
				if t.n == 2 {
					e.dbv = t.items[1]
				}
			case c == 'm' && t.n == 3:
				e.ref.Form, e.dbv, e.oidv, e.classv = FormCrossClass, t.items[0], t.items[1], t.items[2]
			case c == 'n' && t.n == 2:
				e.ref.Form, e.dbv, e.oidv = FormCross, t.items[0], t.items[1]
			default:
				return bad(fmt.Sprintf("list reference %q with %d arguments", c, t.n))
			}
		default:
			return bad(fmt.Sprintf("list of %d items", p.n))
		}
	default:
		return bad("neither a string, a tuple nor a list")
	}
	oid, err := m.oidOf(e.oidv)
	if err != nil {
		return bad(err.Error())
	}
	e.ref.Oid = oid
	if e.dbv >= 0 {
		d := &m.vals[e.dbv]
		if e.dbv == 0 || d.kind != kStr {
			return bad("database name is not a string")
		}
		e.ref.DB = m.intern(m.bytesOf(d))
		if e.ref.DB == "" {
			return bad("empty database name")
		}
	}
	if e.classv >= 0 && e.classv != 0 {
		if idx := m.vals[e.classv].memo; idx >= 0 {
			if v, ok := m.memoGet(idx); ok && v == e.classv {
				e.classMemo = idx
			}
		}
	}
	m.events = append(m.events, e)
	return nil
}

// oidOf returns the oid a string value holds: 8 bytes, or 8 ASCII
// characters of text (ZODB encodes text oids back to bytes).
func (m *machine) oidOf(v int32) (proto.Oid, error) {
	x := &m.vals[v]
	if v == 0 || x.kind != kStr {
		return 0, fmt.Errorf("oid is not a string")
	}
	b := m.bytesOf(x)
	if len(b) != 8 {
		return 0, fmt.Errorf("oid of %d bytes", len(b))
	}
	if x.text {
		for _, c := range b {
			if c >= 0x80 {
				return 0, fmt.Errorf("oid is non-ASCII text")
			}
		}
	}
	return proto.Oid(binary.BigEndian.Uint64(b)), nil
}

// intern returns b as a string, allocated once per machine: a database
// has few names and they recur in every record.
func (m *machine) intern(b []byte) string {
	if s, ok := m.names[string(b)]; ok {
		return s
	}
	if m.names == nil || len(m.names) > 1000 {
		m.names = map[string]string{}
	}
	s := string(b)
	m.names[s] = s
	return s
}
