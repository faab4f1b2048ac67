package filestorage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"

	"github.com/neogo/neo/proto"
)

// maxIndexFile bounds the size of a .index file we read whole: 8 bytes
// per oid plus framing, so 4 GiB covers 500 million objects.
const maxIndexFile = 4 << 30

// loadIndexFile reads name.index and checks it against the file as ZODB
// does (spec §7): it returns the index, the position it covers and the
// tid of the transaction that ends there. Any problem is an error, after
// which the caller scans the whole file.
func (s *Storage) loadIndexFile(size int64) (*Index, int64, proto.Tid, error) {
	iname := s.name + ".index"
	fi, err := os.Stat(iname)
	if err != nil {
		return nil, 0, 0, err
	}
	if fi.Size() > maxIndexFile {
		return nil, 0, 0, fmt.Errorf("%s: too big (%d bytes)", iname, fi.Size())
	}
	b, err := os.ReadFile(iname)
	if err != nil {
		return nil, 0, 0, err
	}
	pos, index, err := parseIndex(b)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("%s: %w", iname, err)
	}
	tid, err := s.checkIndex(index, pos, size)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("%s: stale or wrong: %w", iname, err)
	}
	return index, pos, tid, nil
}

// checkIndex verifies that index, said to cover the file up to pos,
// agrees with the file: pos is the end of a transaction and the records
// of the last non-empty, non-undone transaction before pos are where the
// index says. ZODB checks up to 5 records; we check that whole
// transaction. It returns the tid of the transaction ending at pos.
func (s *Storage) checkIndex(index *Index, pos, size int64) (proto.Tid, error) {
	if pos < 100 || pos > size {
		return 0, fmt.Errorf("position %d outside the file (%d bytes)", pos, size)
	}
	var lastTid proto.Tid
	for first := true; ; first = false {
		var b [8]byte
		if _, err := s.f.ReadAt(b[:], pos-8); err != nil {
			return 0, err
		}
		tl := binary.BigEndian.Uint64(b[:])
		if tl > uint64(pos-8-MagicLen) {
			return 0, fmt.Errorf("no transaction ends at %d", pos)
		}
		tpos := pos - 8 - int64(tl)
		var hb [TxnHeaderLen]byte
		if _, err := s.f.ReadAt(hb[:], tpos); err != nil {
			return 0, err
		}
		h := DecodeTxnHeader(hb[:], tpos)
		if first {
			lastTid = h.Tid
		}
		if h.Len != tl || int64(tl) < h.HeaderLen() {
			return 0, fmt.Errorf("inconsistent transaction at %d", tpos)
		}
		pos = tpos
		if h.Status == StatusUndone || int64(tl) == h.HeaderLen() {
			if pos <= MagicLen {
				return lastTid, nil
			}
			continue
		}
		if h.Status != StatusCommitted && h.Status != StatusPacked {
			return 0, fmt.Errorf("transaction at %d has status %s", tpos, h.Status)
		}
		last := map[proto.Oid]int64{}
		for dpos := tpos + h.HeaderLen(); dpos < h.End(); {
			var db [DataHeaderLen]byte
			if _, err := s.f.ReadAt(db[:], dpos); err != nil {
				return 0, err
			}
			dh := DecodeDataHeader(db[:], dpos)
			if err := dh.check(&h); err != nil {
				return 0, err
			}
			last[dh.Oid] = dpos
			dpos += dh.RecordLen()
		}
		for oid, p := range last {
			if ip, _ := index.Get(oid); ip != p {
				return 0, fmt.Errorf("oid %s at %d, not %d", oid, p, ip)
			}
		}
		return lastTid, nil
	}
}

// saveIndexFile writes name.index for index at end, through a temporary
// file renamed over it, as ZODB does on close. Called with mu held.
func (s *Storage) saveIndexFile(index *Index, end int64) error {
	if end < 100 {
		// ZODB would not accept it; an older one is stale.
		if err := os.Remove(s.name + ".index"); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return nil
	}
	tmp := s.name + ".index.index_tmp"
	if err := os.WriteFile(tmp, appendIndex(nil, end, index), 0o666); err != nil {
		return fmt.Errorf("filestorage: save index: %w", err)
	}
	if err := os.Rename(tmp, s.name+".index"); err != nil {
		return fmt.Errorf("filestorage: save index: %w", err)
	}
	return nil
}
