package filestorage

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"

	"github.com/neogo/neo/proto"
)

// VerifyStats counts what Verify went through.
type VerifyStats struct {
	Transactions int64
	Records      int64
	Size         int64
}

// Verify checks the FileStorage in r (size bytes, called name in errors)
// as ZODB's fstest does (spec §10.1): the magic, then every transaction
// header, every data record header, the record lengths adding up, and
// the redundant lengths. It reads sequentially with bounded memory and
// returns the first problem as a *CorruptError.
//
// With strict, it also makes the checks of spec §10.2 and §10.3: record
// tid equal to the transaction's, no version records, prev equal to the
// oid's previous record (or 0) and back-pointers to an older record of
// the same oid, extension and data shaped like pickles. These keep an
// oid -> position map, so memory grows with the number of objects.
func Verify(name string, r io.ReaderAt, size int64, strict bool) (VerifyStats, error) {
	st := VerifyStats{Size: size}
	if size == 0 {
		return st, corrupt(name, 0, "empty file")
	}
	sr := newSeqReader(r, size, 0)
	b, err := sr.at(0, MagicLen, false)
	if err != nil {
		return st, corrupt(name, 0, "file too short for the magic")
	}
	if err := checkMagic(b); err != nil {
		return st, &CorruptError{File: name, Pos: 0, Err: err}
	}
	var index *Index
	var tindex map[proto.Oid]int64
	if strict {
		index, tindex = NewIndex(), map[proto.Oid]int64{}
	}
	pos := int64(MagicLen)
	var lastTid proto.Tid
	for pos < size {
		sr.shrink()
		b, err := sr.at(pos, TxnHeaderLen, false)
		if err != nil {
			return st, corrupt(name, pos, "truncated transaction header")
		}
		h := DecodeTxnHeader(b, pos)
		if h.Tid <= lastTid {
			return st, corrupt(name, pos, "time-stamp reduction: %s after %s", h.Tid, lastTid)
		}
		lastTid = h.Tid
		if err := h.check(size); err != nil {
			return st, &CorruptError{File: name, Pos: pos, Err: err}
		}
		if strict && h.ExtLen > 0 {
			ext, err := sr.at(pos+TxnHeaderLen+int64(h.UserLen)+int64(h.DescLen), int(h.ExtLen), false)
			if err != nil {
				return st, ioError(name, pos, err)
			}
			if !looksLikePickle(ext) {
				return st, corrupt(name, pos, "extension is not a pickle")
			}
		}
		if h.Status != StatusUndone {
			dpos := pos + h.HeaderLen()
			for dpos < h.End() {
				b, err := sr.at(dpos, DataHeaderLen, false)
				if err != nil {
					return st, ioError(name, dpos, err)
				}
				dh := DecodeDataHeader(b, dpos)
				if dh.TxnPos != pos {
					return st, corrupt(name, dpos, "data record exceeds transaction record (tloc %d, transaction at %d)", dh.TxnPos, pos)
				}
				rlen := dh.RecordLen()
				if dh.VersionLen != 0 {
					if strict {
						return st, corrupt(name, dpos, "version record (legacy format)")
					}
					rlen += 16 + int64(dh.VersionLen)
				}
				if dh.DataLen > maxPos || dpos+rlen > h.End() {
					return st, corrupt(name, dpos, "data records that extend beyond the transaction (end %d)", h.End())
				}
				if strict {
					if err := verifyRecord(name, r, sr, &h, &dh, index, tindex); err != nil {
						return st, err
					}
				}
				st.Records++
				dpos += rlen
			}
			if dpos != h.End() {
				return st, corrupt(name, pos, "data records do not add up to the transaction length")
			}
		}
		rb, err := sr.at(h.End(), 8, false)
		if err != nil {
			return st, ioError(name, h.End(), err)
		}
		if rl := binary.BigEndian.Uint64(rb); rl != h.Len {
			return st, corrupt(name, h.End(), "inconsistent transaction length: %d, redundant %d", h.Len, rl)
		}
		for oid, p := range tindex {
			index.Set(oid, p)
		}
		clear(tindex)
		st.Transactions++
		pos = h.Next()
	}
	return st, nil
}

// verifyRecord makes the strict checks of one data record.
func verifyRecord(name string, r io.ReaderAt, sr *seqReader, th *TxnHeader, dh *DataHeader, index *Index, tindex map[proto.Oid]int64) error {
	pos := dh.Pos
	if dh.Tid != th.Tid {
		return corrupt(name, pos, "record tid %s differs from its transaction's %s", dh.Tid, th.Tid)
	}
	if want, _ := index.Get(dh.Oid); dh.Prev != want && !(dh.Prev == 0 && th.Status == StatusPacked) {
		if dh.Prev != 0 || want == 0 {
			return corrupt(name, pos, "prev %d of oid %s, but its previous record is at %d", dh.Prev, dh.Oid, want)
		}
		// prev 0 with an older record: allowed after a pack (spec §9).
	}
	if dh.Prev != 0 {
		if err := checkTarget(name, r, pos, dh.Prev, dh.Oid, th.Pos); err != nil {
			return err
		}
	}
	if dh.DataLen == 0 {
		b, err := sr.at(pos+DataHeaderLen, 8, false)
		if err != nil {
			return ioError(name, pos, err)
		}
		if back := int64(binary.BigEndian.Uint64(b)); back != 0 {
			if err := checkTarget(name, r, pos, back, dh.Oid, th.Pos); err != nil {
				return err
			}
		}
	} else {
		// The first and last bytes are enough to recognize a pickle.
		first, err := sr.at(pos+DataHeaderLen, 1, false)
		if err != nil {
			return ioError(name, pos, err)
		}
		f := first[0]
		last, err := sr.at(pos+DataHeaderLen+int64(dh.DataLen)-1, 1, false)
		if err != nil {
			return ioError(name, pos, err)
		}
		if !looksLikePickle([]byte{f, last[0]}) {
			return corrupt(name, pos, "data of oid %s is not a pickle", dh.Oid)
		}
	}
	tindex[dh.Oid] = pos
	return nil
}

// checkTarget checks that the prev or back-pointer target of the record
// at pos is a record of oid in an earlier transaction than tpos.
func checkTarget(name string, r io.ReaderAt, pos, target int64, oid proto.Oid, tpos int64) error {
	if target >= tpos || target < MagicLen+TxnHeaderLen {
		return corrupt(name, pos, "pointer %d of oid %s is not to an earlier transaction", target, oid)
	}
	var b [DataHeaderLen]byte
	if _, err := r.ReadAt(b[:], target); err != nil {
		return ioError(name, target, err)
	}
	if h := DecodeDataHeader(b[:], target); h.Oid != oid {
		return corrupt(name, pos, "pointer %d of oid %s is to a record of oid %s", target, oid, h.Oid)
	}
	return nil
}

// looksLikePickle reports whether b starts like a pickle (a PROTO opcode,
// or a protocol 0/1 opening) and ends with STOP.
func looksLikePickle(b []byte) bool {
	if len(b) < 2 || b[len(b)-1] != opStop {
		return false
	}
	switch b[0] {
	case opProto, opMark, '}', 'c', ']', ')':
		return true
	}
	return false
}

// VerifyFile runs [Verify] on the file name.
func VerifyFile(name string, strict bool) (VerifyStats, error) {
	f, err := os.Open(name)
	if err != nil {
		return VerifyStats{}, fmt.Errorf("filestorage: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return VerifyStats{}, fmt.Errorf("filestorage: %w", err)
	}
	return Verify(name, f, fi.Size(), strict)
}
