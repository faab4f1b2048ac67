package filestorage

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/neogo/neo/proto"
)

// TxnMeta is the metadata of a transaction to append.
type TxnMeta struct {
	Tid         proto.Tid // must be greater than the file's last tid
	Status      Status    // StatusCommitted (the default when 0) or StatusPacked
	User        []byte    // at most 65535 bytes each
	Description []byte
	Extension   []byte // pickled dict, or empty; written verbatim
}

// Record is a data record to append.
//
//   - Data != nil, DataTid == 0: the revision's data, inline.
//   - Data == nil, DataTid != 0: a back-pointer to the record of Oid in
//     transaction DataTid (undo, or a copy of a record that shares its
//     data with an older revision).
//   - Data != nil, DataTid != 0: as ZODB's restore: a back-pointer when
//     the record of Oid in DataTid has exactly Data, else Data inline.
//   - Data == nil, DataTid == 0: a deletion ("creation undone").
//
// Data may not be empty but non-nil: the format cannot tell an empty
// record from a back-pointer.
type Record struct {
	Oid     proto.Oid
	Data    []byte
	DataTid proto.Tid
}

// TxnWriter appends one transaction: [Storage.Begin], Store for each
// record, then Commit or Abort. Not safe for concurrent use.
//
// The records go straight to the end of the file through a buffer, under
// a header with status 'c'. Commit writes the lengths, fsyncs, flips the
// status to ' ' and fsyncs again (spec §5): a crash at any point leaves
// either the transaction committed or a tail that ZODB, and Open, drop.
type TxnWriter struct {
	s      *Storage
	h      TxnHeader
	w      *bufio.Writer
	pos    int64               // position of the next record
	end    int64               // end of the committed file (h.Pos)
	tindex map[proto.Oid]int64 // records of this transaction
	prevs  map[proto.Oid]int64 // index entries before this transaction
	err    error
	done   bool
}

// Begin starts appending a transaction. It waits while another
// transaction is being appended: the caller must end each transaction it
// begins with Commit or Abort (Close waits for that too).
func (s *Storage) Begin(m TxnMeta) (*TxnWriter, error) {
	if s.readOnly {
		return nil, ErrReadOnly
	}
	if m.Status == 0 {
		m.Status = StatusCommitted
	}
	if m.Status != StatusCommitted && m.Status != StatusPacked {
		return nil, fmt.Errorf("filestorage: begin %s: status %s: only ' ' and 'p' can be written", m.Tid, m.Status)
	}
	for _, f := range [][]byte{m.User, m.Description, m.Extension} {
		if len(f) > math.MaxUint16 {
			return nil, fmt.Errorf("filestorage: begin %s: user, description or extension longer than 65535 bytes", m.Tid)
		}
	}
	s.wmu.Lock()
	s.mu.RLock()
	end, last, closed := s.mu.end, s.mu.lastTid, s.mu.closed
	s.mu.RUnlock()
	if closed {
		s.wmu.Unlock()
		return nil, ErrClosed
	}
	if m.Tid <= last {
		s.wmu.Unlock()
		return nil, fmt.Errorf("filestorage: begin %s: tid not greater than the last one, %s", m.Tid, last)
	}
	t := &TxnWriter{
		s: s,
		h: TxnHeader{Pos: end, Tid: m.Tid, Status: StatusCheckpoint,
			UserLen: uint16(len(m.User)), DescLen: uint16(len(m.Description)), ExtLen: uint16(len(m.Extension))},
		end:    end,
		tindex: map[proto.Oid]int64{},
		prevs:  map[proto.Oid]int64{},
	}
	// The real status is set at commit: until then the transaction is
	// unfinished, and Len is 0 until the records are all there.
	// One buffer for every transaction (they are appended one at a
	// time): a new one per transaction cost an export through
	// neomigrate a fifth of its CPU, mostly zeroing memory.
	if s.wbuf == nil {
		s.wbuf = bufio.NewWriterSize(io.NewOffsetWriter(s.f, end), 256<<10)
	} else {
		s.wbuf.Reset(io.NewOffsetWriter(s.f, end))
	}
	t.w = s.wbuf
	var hb [TxnHeaderLen]byte
	t.h.Encode(hb[:])
	t.write(hb[:])
	t.write(m.User)
	t.write(m.Description)
	t.write(m.Extension)
	t.pos = end + t.h.HeaderLen()
	t.h.Status = m.Status
	if t.err != nil {
		return nil, t.fail(t.err)
	}
	return t, nil
}

func (t *TxnWriter) write(b []byte) {
	if t.err == nil {
		_, t.err = t.w.Write(b)
	}
}

// Store appends a data record (see [Record]).
func (t *TxnWriter) Store(r Record) error {
	if t.done {
		return errors.New("filestorage: store after commit or abort")
	}
	if t.err != nil {
		return t.err
	}
	if r.Data != nil && len(r.Data) == 0 {
		return fmt.Errorf("filestorage: store oid %s: empty data", r.Oid)
	}
	prev, ok := t.prevs[r.Oid]
	if !ok {
		t.s.mu.RLock()
		prev, _ = t.s.mu.index.Get(r.Oid)
		t.s.mu.RUnlock()
		t.prevs[r.Oid] = prev
	}
	var back int64
	data := r.Data
	if r.DataTid != 0 {
		th, found, err := t.s.findRevision(r.Oid, r.DataTid, prev, t.end)
		if err != nil {
			return fmt.Errorf("filestorage: store oid %s: back-pointer to %s: %w", r.Oid, r.DataTid, err)
		}
		switch {
		case !found && data == nil:
			return fmt.Errorf("filestorage: store oid %s: back-pointer to %s: %w", r.Oid, r.DataTid, ErrNotFound)
		case found && data == nil:
			back = th.Pos
		case found:
			old, _, _, err := t.s.readData(&th, t.end, nil)
			if err != nil {
				return fmt.Errorf("filestorage: store oid %s: %w", r.Oid, err)
			}
			if bytes.Equal(old, data) {
				back, data = th.Pos, nil
			}
		}
	}
	h := DataHeader{Pos: t.pos, Oid: r.Oid, Tid: t.h.Tid, Prev: prev, TxnPos: t.h.Pos, DataLen: uint64(len(data))}
	if h.Pos+h.RecordLen() > maxPos {
		return fmt.Errorf("filestorage: store oid %s: the file would exceed 2^48 bytes", r.Oid)
	}
	var hb [DataHeaderLen + 8]byte
	h.Encode(hb[:])
	if data != nil {
		t.write(hb[:DataHeaderLen])
		t.write(data)
	} else {
		binary.BigEndian.PutUint64(hb[DataHeaderLen:], uint64(back))
		t.write(hb[:])
	}
	if t.err != nil {
		return t.fail(t.err)
	}
	t.tindex[r.Oid] = h.Pos
	t.pos += h.RecordLen()
	return nil
}

// Commit makes the transaction durable and visible to new reads.
func (t *TxnWriter) Commit() error {
	if t.done {
		return errors.New("filestorage: commit after commit or abort")
	}
	if t.err != nil {
		return t.fail(t.err)
	}
	s := t.s
	t.h.Len = uint64(t.pos - t.h.Pos)
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], t.h.Len)
	t.write(b[:])
	if t.err == nil {
		t.err = t.w.Flush()
	}
	if t.err == nil {
		_, t.err = s.f.WriteAt(b[:], t.h.Pos+8)
	}
	if t.err == nil {
		t.err = s.f.Sync()
	}
	if t.err == nil {
		_, t.err = s.f.WriteAt([]byte{byte(t.h.Status)}, t.h.Pos+16)
	}
	if t.err == nil {
		t.err = s.f.Sync()
	}
	if t.err != nil {
		return t.fail(t.err)
	}
	s.mu.Lock()
	for oid, pos := range t.tindex {
		s.mu.index.Set(oid, pos)
	}
	s.mu.end = t.h.Next()
	s.mu.lastTid = t.h.Tid
	s.mu.Unlock()
	t.done = true
	s.wmu.Unlock()
	return nil
}

// Abort drops the transaction: the file is truncated back.
func (t *TxnWriter) Abort() error {
	if t.done {
		return nil
	}
	return t.fail(nil)
}

// fail truncates the file to where the transaction started and ends it.
func (t *TxnWriter) fail(err error) error {
	if t.done {
		return err
	}
	t.done = true
	defer t.s.wmu.Unlock()
	terr := t.s.f.Truncate(t.end)
	if terr == nil {
		terr = t.s.f.Sync()
	}
	if err == nil {
		err = terr
	}
	if err != nil {
		return fmt.Errorf("filestorage: %s: transaction %s: %w", t.s.name, t.h.Tid, err)
	}
	return nil
}
