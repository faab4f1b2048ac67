package filestorage

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/neogo/neo/proto"
)

// This file is the pure part of the format: fixed-size headers, their
// encoding and the checks that need no other record. No I/O.

// File magics (spec §2). The layout after the magic is the same for both.
const (
	// Magic30 starts files written by ZODB under Python 3; [Create] writes it by default.
	Magic30 = "FS30"
	// Magic21 starts files written by ZODB under Python 2.
	Magic21 = "FS21"
)

// Fixed sizes of the format.
const (
	MagicLen      = 4  // file header
	TxnHeaderLen  = 23 // >8sQcHHH
	DataHeaderLen = 42 // >8s8sQQHQ
	// maxPos bounds positions: fsIndex stores them in 6 bytes (spec §7).
	maxPos = 1<<48 - 1
)

// Status is the status byte of a transaction record (spec §5).
type Status byte

// Transaction statuses.
const (
	// StatusCommitted is a normal committed transaction (' ').
	StatusCommitted Status = ' '
	// StatusPacked marks a transaction before the horizon of a past pack ('p').
	StatusPacked Status = 'p'
	// StatusCheckpoint marks a transaction written by vote whose finish
	// did not happen ('c'): legal only as the last record while a writer
	// has the file open; readers stop before it.
	StatusCheckpoint Status = 'c'
	// StatusUndone is the historic "undone" marker ('u'), never written
	// any more: readers skip the whole transaction.
	StatusUndone Status = 'u'
)

// Valid reports whether s may appear in a committed file (' ', 'p', 'u').
func (s Status) Valid() bool {
	return s == StatusCommitted || s == StatusPacked || s == StatusUndone
}

func (s Status) String() string { return fmt.Sprintf("%q", byte(s)) }

// TxnHeader is the fixed part of a transaction record.
//
//	 0        8        16 17   19   21   23
//	+--------+--------+-+----+----+----+------+-----------+-----------+-------------+--------+
//	|  tid   |  tlen  |s|ulen|dlen|elen| user | descr     | extension | data records| tlen   |
//	+--------+--------+-+----+----+----+------+-----------+-----------+-------------+--------+
//	^ Pos                                                              Pos+Len ^
type TxnHeader struct {
	Pos     int64 // position of the record in the file
	Tid     proto.Tid
	Len     uint64 // tlen: record length without the trailing redundant length
	Status  Status
	UserLen uint16
	DescLen uint16
	ExtLen  uint16
}

// HeaderLen is the length of the header with user, description and
// extension: the offset of the first data record.
func (h *TxnHeader) HeaderLen() int64 {
	return TxnHeaderLen + int64(h.UserLen) + int64(h.DescLen) + int64(h.ExtLen)
}

// End is the position of the redundant length, i.e. Pos+Len.
func (h *TxnHeader) End() int64 { return h.Pos + int64(h.Len) }

// Next is the position of the following transaction record.
func (h *TxnHeader) Next() int64 { return h.Pos + int64(h.Len) + 8 }

// DecodeTxnHeader decodes the TxnHeaderLen bytes of b as the header of the
// transaction at pos. It checks nothing.
func DecodeTxnHeader(b []byte, pos int64) TxnHeader {
	_ = b[TxnHeaderLen-1]
	return TxnHeader{
		Pos:     pos,
		Tid:     proto.Tid(binary.BigEndian.Uint64(b[0:])),
		Len:     binary.BigEndian.Uint64(b[8:]),
		Status:  Status(b[16]),
		UserLen: binary.BigEndian.Uint16(b[17:]),
		DescLen: binary.BigEndian.Uint16(b[19:]),
		ExtLen:  binary.BigEndian.Uint16(b[21:]),
	}
}

// Encode writes the header into b[:TxnHeaderLen].
func (h *TxnHeader) Encode(b []byte) {
	_ = b[TxnHeaderLen-1]
	binary.BigEndian.PutUint64(b[0:], uint64(h.Tid))
	binary.BigEndian.PutUint64(b[8:], h.Len)
	b[16] = byte(h.Status)
	binary.BigEndian.PutUint16(b[17:], h.UserLen)
	binary.BigEndian.PutUint16(b[19:], h.DescLen)
	binary.BigEndian.PutUint16(b[21:], h.ExtLen)
}

// check verifies what a header says about itself, given the size of the
// file it is in: the record fits, its status is one of a committed file
// and its metadata fit in it (fstest's checks, spec §10.1).
func (h *TxnHeader) check(size int64) error {
	if h.Len > maxPos || h.Pos+int64(h.Len)+8 > size {
		return fmt.Errorf("transaction of length %d goes beyond the end of the file (%d bytes)", h.Len, size)
	}
	if h.Status == StatusCheckpoint {
		return errors.New("checkpoint flag was not cleared")
	}
	if !h.Status.Valid() {
		return fmt.Errorf("invalid status %s", h.Status)
	}
	if int64(h.Len) < h.HeaderLen() {
		return fmt.Errorf("invalid transaction header: length %d < header length %d", h.Len, h.HeaderLen())
	}
	return nil
}

// DataHeader is the fixed part of a data record.
//
//	 0     8     16     24     32   34     42
//	+-----+-----+------+------+----+------+---------------------------+
//	| oid | tid | prev | tloc |vlen| plen | plen bytes of data, or    |
//	|     |     |      |      |    |      | 8 bytes of back-pointer   |
//	+-----+-----+------+------+----+------+---------------------------+
//	^ Pos
type DataHeader struct {
	Pos        int64 // position of the record in the file
	Oid        proto.Oid
	Tid        proto.Tid // serial of this revision
	Prev       int64     // previous record of Oid, 0 if none
	TxnPos     int64     // tloc: position of the enclosing transaction
	VersionLen uint16    // always 0 in the files we accept
	DataLen    uint64    // plen; 0 means an 8-byte back-pointer follows
}

// DecodeDataHeader decodes the DataHeaderLen bytes of b as the header of
// the data record at pos. It checks nothing.
func DecodeDataHeader(b []byte, pos int64) DataHeader {
	_ = b[DataHeaderLen-1]
	return DataHeader{
		Pos:        pos,
		Oid:        proto.Oid(binary.BigEndian.Uint64(b[0:])),
		Tid:        proto.Tid(binary.BigEndian.Uint64(b[8:])),
		Prev:       int64(binary.BigEndian.Uint64(b[16:]) & (1<<63 - 1)),
		TxnPos:     int64(binary.BigEndian.Uint64(b[24:]) & (1<<63 - 1)),
		VersionLen: binary.BigEndian.Uint16(b[32:]),
		DataLen:    binary.BigEndian.Uint64(b[34:]),
	}
}

// Encode writes the header into b[:DataHeaderLen].
func (h *DataHeader) Encode(b []byte) {
	_ = b[DataHeaderLen-1]
	binary.BigEndian.PutUint64(b[0:], uint64(h.Oid))
	binary.BigEndian.PutUint64(b[8:], uint64(h.Tid))
	binary.BigEndian.PutUint64(b[16:], uint64(h.Prev))
	binary.BigEndian.PutUint64(b[24:], uint64(h.TxnPos))
	binary.BigEndian.PutUint16(b[32:], h.VersionLen)
	binary.BigEndian.PutUint64(b[34:], h.DataLen)
}

// RecordLen is the length of the whole record: header and data, or header
// and back-pointer (legacy version records are never accepted, see check).
func (h *DataHeader) RecordLen() int64 {
	if h.DataLen == 0 {
		return DataHeaderLen + 8
	}
	return DataHeaderLen + int64(h.DataLen)
}

// check verifies a data header inside the transaction th (spec §10.2):
// it belongs to th, it ends inside th, prev points backwards (so that
// walking prev always ends), and it is not a legacy version record. The
// record's tid is not compared with th's: ZODB does not, [Verify] does.
func (h *DataHeader) check(th *TxnHeader) error {
	if h.TxnPos != th.Pos {
		return fmt.Errorf("data record of oid %s says its transaction is at %d, not %d", h.Oid, h.TxnPos, th.Pos)
	}
	if h.VersionLen != 0 {
		return fmt.Errorf("data record of oid %s has a version (legacy format, vlen %d)", h.Oid, h.VersionLen)
	}
	if h.DataLen > maxPos || h.Pos+h.RecordLen() > th.End() {
		return fmt.Errorf("data record of oid %s (data length %d) extends beyond its transaction (end %d)", h.Oid, h.DataLen, th.End())
	}
	if h.Prev >= h.Pos {
		return fmt.Errorf("data record of oid %s has previous record %d not before it", h.Oid, h.Prev)
	}
	return nil
}

// checkMagic verifies the file header.
func checkMagic(b []byte) error {
	if string(b) != Magic30 && string(b) != Magic21 {
		return fmt.Errorf("not a FileStorage file: magic %q", b)
	}
	return nil
}
