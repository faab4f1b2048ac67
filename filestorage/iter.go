package filestorage

import (
	"encoding/binary"
	"io"

	"github.com/neogo/neo/proto"
)

// Txn is a transaction record as an iterator returns it. Its byte slices
// are valid until the next call to the iterator.
type Txn struct {
	TxnHeader
	User        []byte
	Description []byte
	Extension   []byte // pickled dict, or empty
}

// DataRecord is a data record as an iterator returns it.
type DataRecord struct {
	DataHeader
	// Back is the back-pointer of a record without data of its own
	// (DataLen 0): the position of an older record of the same oid whose
	// data this revision has, or 0 for a deletion.
	Back int64
	// Data is the revision's data, back-pointers followed; nil when the
	// revision is a deletion or "creation undone" (also when the chain
	// of back-pointers ends in one). Valid until the next call to the
	// iterator.
	Data []byte
	// DataTid is the tid of the record Back points to (ZODB's data_txn),
	// 0 when Back is 0.
	DataTid proto.Tid
}

// TxnIter iterates over the committed transactions of a Storage, forward
// or backward, and over the data records of each. It reads the file
// sequentially through a bounded buffer. It sees the transactions that
// were committed when it was created; 'u' (undone) transactions are
// skipped. Not safe for concurrent use.
type TxnIter struct {
	s        *Storage
	sr       *seqReader
	backward bool
	pos      int64 // forward: next transaction; backward: end of the next one (after its redundant length)
	end      int64 // end of the committed part of the file
	start    proto.Tid
	txn      Txn
	inTxn    bool
	dpos     int64 // next data record of txn
	rec      DataRecord
	buf      []byte // for data reached through back-pointers
	err      error
}

// Iterate returns an iterator over the transactions whose tid is at
// least start, in file order. When start is nearer the last tid than the
// first, the first transaction is found by walking back from the end
// (tids increase along a file), else by skipping from the start.
func (s *Storage) Iterate(start proto.Tid) *TxnIter {
	it := s.newIter(false, start)
	if start != 0 && it.err == nil && it.end > MagicLen {
		it.pos = it.seek(start)
	}
	return it
}

// seek returns where a forward iteration from start begins: the
// position after the last transaction with a tid below start, found
// backward, or MagicLen (the forward iteration then skips). Errors are
// left for the forward iteration to meet.
func (it *TxnIter) seek(start proto.Tid) int64 {
	b, err := it.sr.at(MagicLen, TxnHeaderLen, false)
	if err != nil {
		return MagicLen
	}
	first := DecodeTxnHeader(b, MagicLen).Tid
	it.s.mu.RLock()
	last := it.s.mu.lastTid
	it.s.mu.RUnlock()
	if start <= first || start-first <= last-start {
		return MagicLen
	}
	back := &TxnIter{s: it.s, sr: it.sr, backward: true, pos: it.end, end: it.end}
	for {
		t, err := back.prevTxn()
		if err != nil {
			return MagicLen
		}
		if t.Tid < start {
			return t.Next()
		}
	}
}

// IterateBackward returns an iterator over all transactions, from the
// last to the first.
func (s *Storage) IterateBackward() *TxnIter {
	return s.newIter(true, 0)
}

func (s *Storage) newIter(backward bool, start proto.Tid) *TxnIter {
	s.mu.RLock()
	end, closed := s.mu.end, s.mu.closed
	s.mu.RUnlock()
	it := &TxnIter{s: s, backward: backward, end: end, start: start, pos: MagicLen}
	if closed {
		it.err = ErrClosed
	}
	if backward {
		it.pos = end
	}
	it.sr = newSeqReader(s.f, end, 0)
	return it
}

// NextTxn returns the next transaction, or io.EOF after the last one.
// Its data records follow through NextData.
func (it *TxnIter) NextTxn() (*Txn, error) {
	for {
		if it.err != nil {
			return nil, it.err
		}
		it.sr.shrink()
		var t *Txn
		var err error
		if it.backward {
			t, err = it.prevTxn()
		} else {
			t, err = it.nextTxn()
		}
		if err != nil {
			it.err = err
			it.inTxn = false
			return nil, err
		}
		if t.Status == StatusUndone || t.Tid < it.start {
			continue
		}
		it.inTxn = true
		it.dpos = t.Pos + t.HeaderLen()
		return t, nil
	}
}

func (it *TxnIter) nextTxn() (*Txn, error) {
	pos := it.pos
	if pos >= it.end {
		return nil, io.EOF
	}
	t, err := it.readTxn(pos)
	if err != nil {
		return nil, err
	}
	it.pos = t.Next()
	return t, nil
}

func (it *TxnIter) prevTxn() (*Txn, error) {
	pos := it.pos
	if pos <= MagicLen {
		return nil, io.EOF
	}
	b, err := it.sr.at(pos-8, 8, true)
	if err != nil {
		return nil, ioError(it.s.name, pos-8, err)
	}
	tlen := binary.BigEndian.Uint64(b)
	if tlen > uint64(pos-8-MagicLen) || tlen < TxnHeaderLen {
		return nil, corrupt(it.s.name, pos-8, "redundant transaction length %d does not lead to a transaction", tlen)
	}
	tpos := pos - 8 - int64(tlen)
	t, err := it.readTxn(tpos)
	if err != nil {
		return nil, err
	}
	if t.Len != tlen {
		return nil, corrupt(it.s.name, tpos, "transaction length %d differs from its redundant length %d", t.Len, tlen)
	}
	it.pos = tpos
	return t, nil
}

// readTxn reads the transaction header and metadata at pos.
func (it *TxnIter) readTxn(pos int64) (*Txn, error) {
	b, err := it.sr.at(pos, TxnHeaderLen, it.backward)
	if err != nil {
		return nil, ioError(it.s.name, pos, err)
	}
	h := DecodeTxnHeader(b, pos)
	if err := h.check(it.end); err != nil {
		return nil, &CorruptError{File: it.s.name, Pos: pos, Err: err}
	}
	meta, err := it.sr.at(pos+TxnHeaderLen, int(h.HeaderLen()-TxnHeaderLen), it.backward)
	if err != nil {
		return nil, ioError(it.s.name, pos+TxnHeaderLen, err)
	}
	u, d := int(h.UserLen), int(h.UserLen)+int(h.DescLen)
	it.txn = Txn{TxnHeader: h, User: meta[:u], Description: meta[u:d], Extension: meta[d:]}
	if !it.backward {
		// The redundant length, checked now so that a forward reader
		// fails at the transaction that is wrong.
		rb, err := it.sr.at(h.End(), 8, false)
		if err != nil {
			return nil, ioError(it.s.name, h.End(), err)
		}
		if rl := binary.BigEndian.Uint64(rb); rl != h.Len {
			return nil, corrupt(it.s.name, h.End(), "redundant transaction length %d differs from %d at %d", rl, h.Len, pos)
		}
		// at may have moved the window: read the metadata again.
		meta, _ = it.sr.at(pos+TxnHeaderLen, int(h.HeaderLen()-TxnHeaderLen), false)
		if meta == nil {
			return nil, ioError(it.s.name, pos+TxnHeaderLen, io.ErrUnexpectedEOF)
		}
		it.txn.User, it.txn.Description, it.txn.Extension = meta[:u], meta[u:d], meta[d:]
	}
	return &it.txn, nil
}

// NextData returns the next data record of the current transaction, or
// io.EOF after its last one. Back-pointers are followed to the data.
func (it *TxnIter) NextData() (*DataRecord, error) {
	if it.err != nil {
		return nil, it.err
	}
	if !it.inTxn || it.dpos >= it.txn.End() {
		return nil, io.EOF
	}
	pos := it.dpos
	b, err := it.sr.at(pos, DataHeaderLen, false)
	if err != nil {
		it.err = ioError(it.s.name, pos, err)
		return nil, it.err
	}
	h := DecodeDataHeader(b, pos)
	if err := h.check(&it.txn.TxnHeader); err != nil {
		it.err = &CorruptError{File: it.s.name, Pos: pos, Err: err}
		return nil, it.err
	}
	it.rec = DataRecord{DataHeader: h}
	if h.DataLen > 0 {
		data, err := it.sr.at(pos+DataHeaderLen, int(h.DataLen), false)
		if err != nil {
			it.err = ioError(it.s.name, pos+DataHeaderLen, err)
			return nil, it.err
		}
		it.rec.Data = data
	} else {
		data, dataTid, back, err := it.s.readData(&h, it.end, it.buf)
		if err != nil {
			it.err = err
			return nil, err
		}
		if cap(data) > cap(it.buf) && cap(data) <= defaultWindow {
			it.buf = data[:0]
		}
		it.rec.Data, it.rec.DataTid, it.rec.Back = data, dataTid, back
	}
	it.dpos = pos + h.RecordLen()
	if it.dpos == it.txn.End() {
		it.inTxn = false
	}
	return &it.rec, nil
}
