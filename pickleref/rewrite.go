package pickleref

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/neogo/neo/proto"
)

// A Mapper returns the reference that replaces r in the rewritten
// record; returning r keeps it. The oid may change freely; the form
// only as follows, the class hint coming from the old id:
//
//	FormOidClass   -> FormOid                               (drop the class hint)
//	FormCrossClass -> FormCross, or with DB "": FormOidClass, FormOid  (made local)
//	FormCross      -> FormOid with DB ""                    (made local)
//	FormWeak       -> FormWeak with DB ""                   (made local)
//
// An error stops the rewrite and is returned wrapped.
type Mapper func(r Ref) (Ref, error)

// Shift is the Importer's renumbering of one source database
// (cluster.md §8.10): a reference to a mount point oid is replaced by a
// plain-oid reference to the mounted root (its class hint dropped, the
// new target's class may differ), every other oid of the database moves
// up by Offset. References into other databases are kept.
type Shift struct {
	Offset uint64
	Mount  map[proto.Oid]proto.Oid
}

// Map is the [Mapper] of s.
func (s *Shift) Map(r Ref) (Ref, error) {
	if r.DB != "" {
		return r, nil
	}
	if t, ok := s.Mount[r.Oid]; ok {
		r.Oid = t
		if r.Form == FormOidClass {
			r.Form = FormOid
		}
		return r, nil
	}
	if uint64(r.Oid) > math.MaxUint64-s.Offset {
		return r, fmt.Errorf("oid %s + %d overflows", r.Oid, s.Offset)
	}
	r.Oid += proto.Oid(s.Offset)
	return r, nil
}

// Rewriter rewrites records, reusing its buffers from one record to
// the next. It is not safe for concurrent use.
type Rewriter struct {
	m     machine
	src   []byte
	ins   []byte
	edits []edit
}

// edit replaces rec[pos:end] by ins[a:b].
type edit struct{ pos, end, a, b int32 }

// Rewrite appends to dst the record with every reference replaced as f
// says, and returns the extended slice. See the package documentation
// for what changes in the bytes.
func Rewrite(dst, record []byte, f Mapper) ([]byte, error) {
	var w Rewriter
	return w.Rewrite(dst, record, f)
}

const (
	actNone uint8 = iota
	actPatch
	actRebuild
)

// Rewrite is the package's [Rewrite], with w's buffers.
func (w *Rewriter) Rewrite(dst, record []byte, f Mapper) ([]byte, error) {
	m := &w.m
	if err := m.run(record); err != nil {
		return dst, err
	}
	changed := false
	for i := range m.events {
		e := &m.events[i]
		nr, err := f(e.ref)
		if err != nil {
			return dst, fmt.Errorf("map reference %v: %w", e.ref, err)
		}
		if err := checkChange(e.ref, nr); err != nil {
			return dst, err
		}
		e.newRef = nr
		switch {
		case nr == e.ref:
			e.action = actNone
		case nr.Form != e.ref.Form || nr.DB != e.ref.DB:
			e.action = actRebuild
		default:
			e.action = actPatch
		}
		changed = changed || e.action != actNone
		v := &m.vals[e.oidv]
		if m.exclusive(e) {
			v.count++
		}
		if e.action != actRebuild {
			switch {
			case !v.wantSet:
				v.want, v.wantSet = uint64(nr.Oid), true
			case v.want != uint64(nr.Oid):
				v.conflict = true
			}
		}
	}
	if !changed {
		return append(dst, record...), nil
	}
	w.src = append(w.src[:0], record...)
	w.ins = w.ins[:0]
	w.edits = w.edits[:0]
	for i := range m.events {
		e := &m.events[i]
		if e.action == actPatch {
			v := &m.vals[e.oidv]
			if !v.conflict && v.count == v.pushes && !v.scratch && !v.text && v.b-v.a == 8 &&
				(v.op == opShortBinString || v.op == opBinString || v.op == opShortBinBytes || v.op == opBinBytes) {
				binary.BigEndian.PutUint64(w.src[v.a:], uint64(e.newRef.Oid))
				continue
			}
			e.action = actRebuild
		}
		if e.action == actRebuild {
			if err := w.rebuild(e); err != nil {
				return dst, err
			}
		}
	}
	if len(w.edits) == 0 {
		return append(dst, w.src...), nil
	}
	prev := int32(0)
	for _, ed := range w.edits {
		dst = append(dst, w.src[prev:ed.pos]...)
		dst = append(dst, w.ins[ed.a:ed.b]...)
		prev = ed.end
	}
	return append(dst, w.src[prev:]...), nil
}

// exclusive tells whether each container of e's id was put on the stack
// once only, for e: then the oid string's push that went into it is
// accounted for by e.
func (m *machine) exclusive(e *event) bool {
	if e.ref.Form == FormOid {
		return true // the BINPERSID consumed a push of the string itself
	}
	if m.vals[e.pid].pushes != 1 {
		return false
	}
	return e.tup < 0 || m.vals[e.tup].pushes == 1
}

// checkChange refuses the changes of form a Mapper may not make.
func checkChange(old, nr Ref) error {
	ok := nr.Form == old.Form && nr.DB == old.DB
	switch {
	case ok:
	case old.Form == FormOidClass:
		ok = nr.Form == FormOid && nr.DB == ""
	case old.Form == FormCrossClass:
		ok = nr.Form == FormCross && nr.DB == old.DB ||
			(nr.Form == FormOidClass || nr.Form == FormOid) && nr.DB == ""
	case old.Form == FormCross:
		ok = nr.Form == FormOid && nr.DB == ""
	case old.Form == FormWeak:
		ok = nr.Form == FormWeak && nr.DB == ""
	}
	if !ok {
		return fmt.Errorf("pickleref: reference %v cannot become %v", old, nr)
	}
	return nil
}

// rebuild adds the edit that replaces e's id by a new one built from
// scratch: at a BINPERSID, POP the old id and push the new one; a PERSID
// is replaced whole.
func (w *Rewriter) rebuild(e *event) error {
	a := int32(len(w.ins))
	ed := edit{pos: e.at, end: e.at}
	if e.persid {
		ed.end = e.atEnd
	} else {
		w.ins = append(w.ins, opPop)
	}
	nr := e.newRef
	var err error
	switch nr.Form {
	case FormOid:
		w.oid(e, nr.Oid)
	case FormOidClass:
		w.ins = append(w.ins, opMark)
		w.oid(e, nr.Oid)
		if err = w.class(e); err != nil {
			return err
		}
		w.ins = append(w.ins, opTuple)
	case FormLegacyWeak:
		w.ins = append(w.ins, opMark)
		w.oid(e, nr.Oid)
		w.ins = append(w.ins, opList)
	default:
		w.ins = append(w.ins, opMark)
		w.str(e.markv, e.proto)
		w.ins = append(w.ins, opMark)
		switch nr.Form {
		case FormWeak:
			w.oid(e, nr.Oid)
			if nr.DB != "" {
				w.str(e.dbv, e.proto)
			}
		case FormCross:
			w.str(e.dbv, e.proto)
			w.oid(e, nr.Oid)
		case FormCrossClass:
			w.str(e.dbv, e.proto)
			w.oid(e, nr.Oid)
			if err = w.class(e); err != nil {
				return err
			}
		}
		w.ins = append(w.ins, opTuple, opList)
	}
	if e.persid {
		w.ins = append(w.ins, opBinPersID)
	}
	ed.a, ed.b = a, int32(len(w.ins))
	w.edits = append(w.edits, ed)
	return nil
}

// oid appends a string literal of the oid, of the type of e's old one:
// bytes for bytes (and text in protocol 3), else a Python 2 str.
func (w *Rewriter) oid(e *event, oid proto.Oid) {
	v := &w.m.vals[e.oidv]
	op := byte(opShortBinString)
	if v.op == opShortBinBytes || v.op == opBinBytes || v.text && e.proto >= 3 {
		op = opShortBinBytes
	}
	w.ins = append(w.ins, op, 8)
	w.ins = binary.BigEndian.AppendUint64(w.ins, uint64(oid))
}

// str appends a literal of the string value v, of its type.
func (w *Rewriter) str(vi int32, proto byte) {
	v := &w.m.vals[vi]
	b := w.m.bytesOf(v)
	switch {
	case v.text:
		w.ins = append(w.ins, opBinUnicode)
		w.ins = binary.LittleEndian.AppendUint32(w.ins, uint32(len(b)))
	case (v.op == opShortBinBytes || v.op == opBinBytes) && len(b) < 256:
		w.ins = append(w.ins, opShortBinBytes, byte(len(b)))
	case v.op == opShortBinBytes || v.op == opBinBytes:
		w.ins = append(w.ins, opBinBytes)
		w.ins = binary.LittleEndian.AppendUint32(w.ins, uint32(len(b)))
	case len(b) < 256:
		w.ins = append(w.ins, opShortBinString, byte(len(b)))
	default:
		w.ins = append(w.ins, opBinString)
		w.ins = binary.LittleEndian.AppendUint32(w.ins, uint32(len(b)))
	}
	w.ins = append(w.ins, b...)
}

// class appends what pushes e's class hint: a memo get, else a copy of
// the opcodes that built it.
func (w *Rewriter) class(e *event) error {
	switch idx := e.classMemo; {
	case idx >= 0 && idx < 256:
		w.ins = append(w.ins, opBinGet, byte(idx))
	case idx >= 0 && idx <= math.MaxUint32:
		w.ins = append(w.ins, opLongBinGet)
		w.ins = binary.LittleEndian.AppendUint32(w.ins, uint32(idx))
	case e.classv > 0:
		v := &w.m.vals[e.classv]
		if v.kind == kList {
			return fmt.Errorf("%w: class hint at %d is a list", ErrPickle, e.at)
		}
		w.ins = append(w.ins, w.m.rec[v.start:v.end]...)
	default:
		return fmt.Errorf("%w: class hint at %d cannot be rebuilt", ErrPickle, e.at)
	}
	return nil
}
