package filestorage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/neogo/neo/proto"
)

// scanner builds the index by reading a file forward, as ZODB's open
// does (spec §6): it indexes every transaction, skips 'u' ones, and stops
// at an incomplete or unfinished (status 'c') last transaction, which it
// reports as a Tail.
type scanner struct {
	name    string
	sr      *seqReader
	log     *slog.Logger
	index   *Index
	lastTid proto.Tid
	tindex  map[proto.Oid]int64
	noIndex bool // check records, index nothing
}

// scan indexes the transactions from pos to the end of the file. It
// returns the end of the last complete transaction and the tail after
// it, if any.
func (sc *scanner) scan(pos int64) (end int64, tail *Tail, err error) {
	size := sc.sr.size
	if sc.tindex == nil {
		sc.tindex = map[proto.Oid]int64{}
	}
	for {
		b, err := sc.sr.at(pos, TxnHeaderLen, false)
		if err == io.EOF {
			return pos, nil, nil
		}
		if err == io.ErrUnexpectedEOF {
			return pos, &Tail{Pos: pos, Reason: "truncated transaction header"}, nil
		}
		if err != nil {
			return 0, nil, ioError(sc.name, pos, err)
		}
		h := DecodeTxnHeader(b, pos)
		if h.Tid <= sc.lastTid {
			sc.log.Warn("time-stamp reduction", "pos", pos, "tid", h.Tid, "last", sc.lastTid)
		}
		if h.Len > uint64(size) || pos+int64(h.Len)+8 > size {
			return pos, &Tail{Pos: pos, Reason: "transaction goes beyond the end of the file"}, nil
		}
		if h.Status == StatusCheckpoint {
			return pos, &Tail{Pos: pos, Reason: "checkpoint flag not cleared (commit not finished)"}, nil
		}
		if !h.Status.Valid() {
			sc.log.Warn("invalid transaction status", "pos", pos, "status", h.Status.String())
		}
		if int64(h.Len) < h.HeaderLen() {
			// Garbage at the end of the file (a crash), or in the middle?
			// The last 8 bytes of a sane file are the length of its last
			// transaction.
			rb, err := sc.sr.at(size-8, 8, true)
			if err != nil {
				return 0, nil, ioError(sc.name, size-8, err)
			}
			rtl := binary.BigEndian.Uint64(rb)
			if rtl > uint64(size) || size-int64(rtl) < pos || rtl < TxnHeaderLen {
				return pos, &Tail{Pos: pos, Reason: "invalid transaction header at the end of the file"}, nil
			}
			return 0, nil, corrupt(sc.name, pos, "invalid transaction header: length %d < header length %d", h.Len, h.HeaderLen())
		}
		if h.Status != StatusUndone {
			if err := sc.records(&h); err != nil {
				return 0, nil, err
			}
		}
		rb, err := sc.sr.at(h.End(), 8, false)
		if err != nil {
			return 0, nil, ioError(sc.name, h.End(), err)
		}
		if rl := binary.BigEndian.Uint64(rb); rl != h.Len {
			return 0, nil, corrupt(sc.name, h.End(), "redundant transaction length %d differs from %d at %d", rl, h.Len, pos)
		}
		for oid, p := range sc.tindex {
			sc.index.Set(oid, p)
		}
		clear(sc.tindex)
		sc.lastTid = h.Tid
		pos = h.Next()
	}
}

// records indexes the data records of the transaction h into tindex.
func (sc *scanner) records(h *TxnHeader) error {
	pos := h.Pos + h.HeaderLen()
	for pos < h.End() {
		b, err := sc.sr.at(pos, DataHeaderLen, false)
		if err != nil {
			return ioError(sc.name, pos, err)
		}
		dh := DecodeDataHeader(b, pos)
		if err := dh.check(h); err != nil {
			return &CorruptError{File: sc.name, Pos: pos, Err: err}
		}
		if sc.noIndex {
			pos += dh.RecordLen()
			continue
		}
		if prev, _ := sc.index.Get(dh.Oid); prev != dh.Prev {
			// ZODB logs an error for a wrong non-zero prev, a warning for
			// prev 0 (packed files have those), and goes on.
			sc.log.Warn("incorrect previous pointer", "pos", pos, "oid", dh.Oid, "prev", dh.Prev, "index", prev)
		}
		sc.tindex[dh.Oid] = pos
		pos += dh.RecordLen()
	}
	if pos != h.End() {
		return corrupt(sc.name, h.Pos, "data records do not add up to the transaction length")
	}
	return nil
}

// ioError turns a short read inside what must be there into a
// CorruptError (the file was cut), and names the file in other errors.
func ioError(name string, pos int64, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return corrupt(name, pos, "unexpected end of file")
	}
	return fmt.Errorf("filestorage: %s: read at %d: %w", name, pos, err)
}
