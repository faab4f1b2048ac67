package filestorage

import (
	"errors"
	"fmt"
)

// Errors. Load errors compare with [errors.Is]; every error about the
// content of a file is a [*CorruptError], which matches [ErrCorrupt].
var (
	// ErrCorrupt marks an error about the content of a file: it is not
	// what the format allows. The error names the file and the offset.
	ErrCorrupt = errors.New("filestorage: corrupt file")
	// ErrNotFound is ZODB's POSKeyError: the oid has no record, the
	// serial asked for does not exist, or the revision selected is a
	// deletion (then the error also matches ErrDeleted).
	ErrNotFound = errors.New("filestorage: object not found")
	// ErrDeleted means the revision selected is a deletion or "creation
	// undone" record (no data). Such errors also match ErrNotFound.
	ErrDeleted = errors.New("filestorage: object deleted or its creation undone")
	// ErrNoRevision is loadBefore's None: the oid exists, but has no
	// revision before the tid asked for (not created yet, or packed away).
	ErrNoRevision = errors.New("filestorage: no revision before the given tid")
	// ErrReadOnly is returned by writes to a storage opened read-only.
	ErrReadOnly = errors.New("filestorage: read-only")
	// ErrNoIndex is returned by loads of a storage opened with
	// Options.NoIndex.
	ErrNoIndex = errors.New("filestorage: opened without an index")
	// ErrClosed is returned by operations on a closed storage.
	ErrClosed = errors.New("filestorage: closed")
)

// CorruptError reports content of a file that the format does not allow.
type CorruptError struct {
	File string // the file's name
	Pos  int64  // offset of the offending record or field
	Err  error  // what is wrong
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("filestorage: %s: corrupt at offset %d: %v", e.File, e.Pos, e.Err)
}

func (e *CorruptError) Unwrap() error { return e.Err }

// Is makes every CorruptError match ErrCorrupt.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

func corrupt(file string, pos int64, format string, args ...any) error {
	return &CorruptError{File: file, Pos: pos, Err: fmt.Errorf(format, args...)}
}

// deleted is the error of a load that selects a deletion record.
func deleted(oid fmt.Stringer) error {
	return fmt.Errorf("oid %s: %w (%w)", oid, ErrNotFound, ErrDeleted)
}
