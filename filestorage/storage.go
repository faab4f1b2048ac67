package filestorage

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/neogo/neo/proto"
)

// File is what a Storage needs of its Data.fs: *os.File has it. Tests
// substitute files that fail or stop writing (a crash) through
// [Options.OpenFile].
type File interface {
	io.ReaderAt
	io.WriterAt
	Truncate(size int64) error
	Sync() error
	Close() error
	Stat() (fs.FileInfo, error)
}

// Options configure [Open].
type Options struct {
	// ReadOnly opens the file for reading only: nothing is written, not
	// even the truncation of an incomplete last transaction, which is
	// just left out.
	ReadOnly bool
	// Create creates the file (with the magic) if it does not exist.
	Create bool
	// Magic is the magic of a created file: Magic30 (the default) or Magic21.
	Magic string
	// NoIndexFile ignores Data.fs.index and builds the index by scanning.
	NoIndexFile bool
	// NoIndex opens read-only for iteration only: the file is checked
	// as by a scan but no index is kept, so memory does not grow with
	// the number of objects; loads fail with ErrNoIndex.
	NoIndex bool
	// Logger receives the warnings ZODB logs at open (time-stamp
	// reduction, unexpected prev pointers, a stale index, a truncated
	// tail). Default: discard.
	Logger *slog.Logger
	// OpenFile opens Data.fs; default os.OpenFile.
	OpenFile func(name string, flag int, perm fs.FileMode) (File, error)
}

// Tail describes an incomplete or unfinished last transaction found at
// open: a crash during a commit leaves one. Readers end the file at Pos;
// a read-write open saves the bytes from Pos in Data.fs.trN and truncates.
type Tail struct {
	Pos     int64  // where the valid part of the file ends
	Size    int64  // file size before truncation
	Reason  string // what was found at Pos
	SavedTo string // the .trN file, in read-write mode
}

// Storage is one Data.fs, open for reading or for reading and appending.
//
// Reads (loads, iterators) may run concurrently with each other and with
// one writing transaction: a read sees the transactions committed when
// it started. The index and the end of the file are guarded by mu;
// writers are serialized by wmu (lock order: wmu, then mu).
type Storage struct {
	name     string
	f        File
	lock     *os.File // Data.fs.lock, held in read-write mode
	readOnly bool
	noIndex  bool // Options.NoIndex
	log      *slog.Logger
	magic    string
	tail     *Tail

	wmu  sync.Mutex    // held by the open writing transaction (Begin..Commit/Abort)
	wbuf *bufio.Writer // of the open writing transaction, reused (under wmu)

	mu struct {
		sync.RWMutex
		index   *Index // oid -> position of its latest data record
		end     int64  // end of the last committed transaction
		lastTid proto.Tid
		closed  bool
	}
}

// Open opens the FileStorage file name (spec §6): it reads the index from
// name.index when that is valid, else scans the whole file, and handles
// an incomplete last transaction as ZODB does (see [Tail]).
func Open(name string, opts Options) (*Storage, error) {
	openFile := opts.OpenFile
	if openFile == nil {
		openFile = func(name string, flag int, perm fs.FileMode) (File, error) { return os.OpenFile(name, flag, perm) }
	}
	if opts.NoIndex && !opts.ReadOnly {
		return nil, fmt.Errorf("filestorage: %s: NoIndex needs ReadOnly", name)
	}
	s := &Storage{name: name, readOnly: opts.ReadOnly, noIndex: opts.NoIndex, log: opts.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = s.log.With("file", name)
	flag := os.O_RDWR
	if opts.ReadOnly {
		flag = os.O_RDONLY
	} else {
		lock, err := lockFile(name + ".lock")
		if err != nil {
			return nil, err
		}
		s.lock = lock
		if opts.Create {
			flag |= os.O_CREATE
		}
	}
	f, err := openFile(name, flag, 0o666)
	if err != nil {
		s.unlock()
		return nil, fmt.Errorf("filestorage: %w", err)
	}
	s.f = f
	if err := s.init(opts); err != nil {
		f.Close()
		s.unlock()
		return nil, err
	}
	return s, nil
}

// OpenReader opens, read-only, a FileStorage held by r (size bytes),
// named name in errors. It scans the whole file: there is no index file.
func OpenReader(name string, r io.ReaderAt, size int64, opts Options) (*Storage, error) {
	s := &Storage{name: name, readOnly: true, noIndex: opts.NoIndex, log: opts.Logger, f: readOnlyFile{r, size}}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	opts.NoIndexFile = true
	if err := s.init(opts); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Storage) init(opts Options) error {
	fi, err := s.f.Stat()
	if err != nil {
		return fmt.Errorf("filestorage: %w", err)
	}
	size := fi.Size()
	s.mu.index = NewIndex()
	if size == 0 {
		// An empty file is an empty storage; a writer gives it its magic.
		s.magic = opts.Magic
		if s.magic == "" {
			s.magic = Magic30
		}
		if s.magic != Magic30 && s.magic != Magic21 {
			return fmt.Errorf("filestorage: %s: invalid magic %q for a new file", s.name, s.magic)
		}
		s.mu.end = MagicLen
		if s.readOnly {
			return nil
		}
		if _, err := s.f.WriteAt([]byte(s.magic), 0); err != nil {
			return fmt.Errorf("filestorage: %s: %w", s.name, err)
		}
		if err := s.f.Sync(); err != nil {
			return fmt.Errorf("filestorage: %s: %w", s.name, err)
		}
		return nil
	}
	var magic [MagicLen]byte
	if n, _ := s.f.ReadAt(magic[:], 0); n < MagicLen {
		return corrupt(s.name, 0, "file of %d bytes is too short for a FileStorage", size)
	}
	if err := checkMagic(magic[:]); err != nil {
		return &CorruptError{File: s.name, Pos: 0, Err: err}
	}
	s.magic = string(magic[:])

	start, lastTid := int64(MagicLen), proto.Tid(0)
	if !opts.NoIndexFile && !opts.NoIndex {
		if idx, pos, tid, err := s.loadIndexFile(size); err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				s.log.Warn("index file not used, scanning the whole file", "err", err)
			}
		} else {
			s.mu.index, start, lastTid = idx, pos, tid
		}
	}
	sc := scanner{name: s.name, sr: newSeqReader(s.f, size, 0), log: s.log, index: s.mu.index, lastTid: lastTid, noIndex: s.noIndex}
	end, tail, err := sc.scan(start)
	if err != nil {
		return err
	}
	s.mu.end, s.mu.lastTid = end, sc.lastTid
	if tail != nil {
		tail.Size = size
		s.tail = tail
		s.log.Warn("incomplete last transaction", "pos", tail.Pos, "reason", tail.Reason)
		if !s.readOnly {
			if err := s.truncateTail(tail); err != nil {
				return err
			}
		}
	}
	return nil
}

// truncateTail saves the bytes of the file from tail.Pos in the first
// free name.trN, then truncates the file at tail.Pos (ZODB's _truncate).
func (s *Storage) truncateTail(tail *Tail) error {
	for i := 0; ; i++ {
		tr := fmt.Sprintf("%s.tr%d", s.name, i)
		out, err := os.OpenFile(tr, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("filestorage: save the tail of %s: %w", s.name, err)
		}
		_, err = io.Copy(out, io.NewSectionReader(s.f, tail.Pos, tail.Size-tail.Pos))
		if err == nil {
			err = out.Sync()
		}
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("filestorage: save the tail of %s: %w", s.name, err)
		}
		tail.SavedTo = tr
		break
	}
	if err := s.f.Truncate(tail.Pos); err != nil {
		return fmt.Errorf("filestorage: truncate %s: %w", s.name, err)
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("filestorage: truncate %s: %w", s.name, err)
	}
	return nil
}

// Close closes the file and releases the lock. In read-write mode it
// first saves the index into name.index, as ZODB does.
func (s *Storage) Close() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return ErrClosed
	}
	s.mu.closed = true
	var err error
	if !s.readOnly && s.lock != nil {
		err = s.saveIndexFile(s.mu.index, s.mu.end)
	}
	if cerr := s.f.Close(); err == nil {
		err = cerr
	}
	s.unlock()
	return err
}

// Name is the file's name.
func (s *Storage) Name() string { return s.name }

// Magic is the file's magic, Magic30 or Magic21.
func (s *Storage) Magic() string { return s.magic }

// Tail is the incomplete last transaction found at open, or nil.
func (s *Storage) Tail() *Tail { return s.tail }

// LastTid is the tid of the last committed transaction, 0 if none.
func (s *Storage) LastTid() proto.Tid {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.mu.lastTid
}

// End is the end position of the last committed transaction: the file's
// size when it is clean.
func (s *Storage) End() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.mu.end
}

// Len is the number of oids in the index (0 with Options.NoIndex).
func (s *Storage) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.mu.index.Len()
}

// Oids calls fn for every oid of the index in ascending order, with the
// position of its latest record, until fn returns false. The storage's
// index is read-locked meanwhile: fn must not commit.
func (s *Storage) Oids(fn func(oid proto.Oid, pos int64) bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	s.mu.index.All(fn)
}

// MaxOid is the greatest oid of the index (where an oid allocator
// starts), 0 if none.
func (s *Storage) MaxOid() proto.Oid {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.mu.index.Max()
}

// lookup returns the position of oid's latest record and the end of the
// committed part of the file.
func (s *Storage) lookup(oid proto.Oid) (pos, end int64, err error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.mu.closed {
		return 0, 0, ErrClosed
	}
	if s.noIndex {
		return 0, 0, ErrNoIndex
	}
	pos, ok := s.mu.index.Get(oid)
	if !ok {
		return 0, 0, fmt.Errorf("oid %s: %w", oid, ErrNotFound)
	}
	return pos, s.mu.end, nil
}

// readDataHeader reads the header of the record of oid at pos, which
// must lie before end.
func (s *Storage) readDataHeader(pos, end int64, oid proto.Oid) (DataHeader, error) {
	if pos < MagicLen+TxnHeaderLen || pos+DataHeaderLen > end {
		return DataHeader{}, corrupt(s.name, pos, "record position of oid %s outside the file (end %d)", oid, end)
	}
	var b [DataHeaderLen]byte
	if _, err := s.f.ReadAt(b[:], pos); err != nil {
		return DataHeader{}, s.ioErr(pos, err)
	}
	h := DecodeDataHeader(b[:], pos)
	switch {
	case h.Oid != oid:
		return h, corrupt(s.name, pos, "record of oid %s found where oid %s was expected", h.Oid, oid)
	case h.VersionLen != 0:
		return h, corrupt(s.name, pos, "data record of oid %s has a version (legacy format)", oid)
	case h.DataLen > maxPos || pos+h.RecordLen() > end:
		return h, corrupt(s.name, pos, "data record of oid %s (data length %d) goes beyond the end %d", oid, h.DataLen, end)
	case h.TxnPos >= pos || h.TxnPos < MagicLen:
		return h, corrupt(s.name, pos, "data record of oid %s has transaction position %d", oid, h.TxnPos)
	case h.Prev >= pos:
		return h, corrupt(s.name, pos, "data record of oid %s has previous record %d not before it", oid, h.Prev)
	}
	return h, nil
}

func (s *Storage) ioErr(pos int64, err error) error { return ioError(s.name, pos, err) }

// readData returns the data of the record h (following back-pointers),
// nil for no data, and the tid of the record h's back-pointer points to
// directly (0 when h holds its data). buf is used if big enough.
func (s *Storage) readData(h *DataHeader, end int64, buf []byte) (data []byte, dataTid proto.Tid, back int64, err error) {
	first := true
	for {
		if h.DataLen > 0 {
			if uint64(cap(buf)) >= h.DataLen {
				data = buf[:h.DataLen]
			} else {
				data = make([]byte, h.DataLen)
			}
			if _, err := s.f.ReadAt(data, h.Pos+DataHeaderLen); err != nil {
				return nil, 0, back, s.ioErr(h.Pos+DataHeaderLen, err)
			}
			return data, dataTid, back, nil
		}
		var b [8]byte
		if _, err := s.f.ReadAt(b[:], h.Pos+DataHeaderLen); err != nil {
			return nil, 0, back, s.ioErr(h.Pos+DataHeaderLen, err)
		}
		bp := int64(binary.BigEndian.Uint64(b[:]) & (1<<63 - 1))
		if first {
			back = bp
		}
		if bp == 0 {
			return nil, dataTid, back, nil
		}
		if bp >= h.Pos {
			return nil, 0, back, corrupt(s.name, h.Pos+DataHeaderLen, "back-pointer %d of oid %s does not point backwards", bp, h.Oid)
		}
		th, err := s.readDataHeader(bp, end, h.Oid)
		if err != nil {
			return nil, 0, back, err
		}
		if first {
			dataTid, first = th.Tid, false
		}
		h = &th
	}
}

// Load returns the data and serial of the current revision of oid.
// Errors: ErrNotFound (unknown oid; or a deletion record: then it also
// matches ErrDeleted, and serial is the deletion's), a *CorruptError, or
// an I/O error.
func (s *Storage) Load(oid proto.Oid) (data []byte, serial proto.Tid, err error) {
	pos, end, err := s.lookup(oid)
	if err != nil {
		return nil, 0, err
	}
	h, err := s.readDataHeader(pos, end, oid)
	if err != nil {
		return nil, 0, err
	}
	data, _, _, err = s.readData(&h, end, nil)
	if err != nil {
		return nil, 0, err
	}
	if data == nil {
		return nil, h.Tid, deleted(oid)
	}
	return data, h.Tid, nil
}

// Serial returns the serial of the current revision of oid (ZODB's
// getTid): ErrNotFound if oid is unknown or its current revision is a
// deletion.
func (s *Storage) Serial(oid proto.Oid) (proto.Tid, error) {
	_, serial, err := s.Load(oid)
	return serial, err
}

// LoadBefore returns the revision of oid with the greatest serial
// strictly less than before: its data, its serial and the serial of the
// revision that follows it (next), 0 if it is the latest.
// Errors: ErrNotFound (unknown oid, or the selected revision is a
// deletion: then it also matches ErrDeleted, and serial and next are
// the deletion's), ErrNoRevision (none before before: ZODB's None), a
// *CorruptError, or an I/O error.
func (s *Storage) LoadBefore(oid proto.Oid, before proto.Tid) (data []byte, serial, next proto.Tid, err error) {
	pos, end, err := s.lookup(oid)
	if err != nil {
		return nil, 0, 0, err
	}
	for {
		h, err := s.readDataHeader(pos, end, oid)
		if err != nil {
			return nil, 0, 0, err
		}
		if h.Tid < before {
			data, _, _, err = s.readData(&h, end, nil)
			if err != nil {
				return nil, 0, 0, err
			}
			if data == nil {
				return nil, h.Tid, next, deleted(oid)
			}
			return data, h.Tid, next, nil
		}
		if h.Prev == 0 {
			return nil, 0, 0, fmt.Errorf("oid %s before %s: %w", oid, before, ErrNoRevision)
		}
		next, pos = h.Tid, h.Prev
	}
}

// LoadSerial returns the data of the revision serial of oid. Errors as
// for Load; ErrNotFound also when there is no such revision.
func (s *Storage) LoadSerial(oid proto.Oid, serial proto.Tid) ([]byte, error) {
	pos, end, err := s.lookup(oid)
	if err != nil {
		return nil, err
	}
	for {
		h, err := s.readDataHeader(pos, end, oid)
		if err != nil {
			return nil, err
		}
		if h.Tid == serial {
			data, _, _, err := s.readData(&h, end, nil)
			if err != nil {
				return nil, err
			}
			if data == nil {
				return nil, deleted(oid)
			}
			return data, nil
		}
		if h.Tid < serial || h.Prev == 0 {
			return nil, fmt.Errorf("oid %s serial %s: %w", oid, serial, ErrNotFound)
		}
		pos = h.Prev
	}
}

// findRevision returns the header of the record of oid whose tid is
// serial, walking prev from oid's latest record (or from pos, when
// not 0), and whether it exists.
func (s *Storage) findRevision(oid proto.Oid, serial proto.Tid, pos, end int64) (DataHeader, bool, error) {
	for pos != 0 {
		h, err := s.readDataHeader(pos, end, oid)
		if err != nil {
			return h, false, err
		}
		if h.Tid == serial {
			return h, true, nil
		}
		if h.Tid < serial {
			break
		}
		pos = h.Prev
	}
	return DataHeader{}, false, nil
}

// lockFile takes the exclusive lock ZODB takes (zc.lockfile: flock of
// Data.fs.lock, which holds the process id).
func lockFile(name string) (*os.File, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		return nil, fmt.Errorf("filestorage: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("filestorage: lock %s: %w", name, err)
	}
	f.Truncate(0)
	fmt.Fprintf(f, " %d\n", os.Getpid())
	return f, nil
}

func (s *Storage) unlock() {
	if s.lock != nil {
		s.lock.Close() // releases the flock
		s.lock = nil
	}
}

// readOnlyFile is the File of OpenReader.
type readOnlyFile struct {
	io.ReaderAt
	size int64
}

func (readOnlyFile) WriteAt([]byte, int64) (int, error) { return 0, ErrReadOnly }
func (readOnlyFile) Truncate(int64) error               { return ErrReadOnly }
func (readOnlyFile) Sync() error                        { return nil }
func (readOnlyFile) Close() error                       { return nil }
func (f readOnlyFile) Stat() (fs.FileInfo, error)       { return sizeInfo(f.size), nil }

type sizeInfo int64

func (s sizeInfo) Name() string       { return "" }
func (s sizeInfo) Size() int64        { return int64(s) }
func (s sizeInfo) Mode() fs.FileMode  { return 0o444 }
func (s sizeInfo) ModTime() time.Time { return time.Time{} }
func (s sizeInfo) IsDir() bool        { return false }
func (s sizeInfo) Sys() any           { return nil }
