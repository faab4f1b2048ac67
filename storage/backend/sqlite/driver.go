package sqlite

import (
	"modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

func init() {
	// Sync commits with fdatasync(2), as SQLite builds for Linux do (the
	// transpiled library keeps the portable fsync): the file data and its
	// size are as durable, only the timestamps are not flushed through
	// the file system's journal, which fsync made every commit wait for.
	// Platforms without fdatasync keep fsync (the error says so).
	sqlite.Fdatasync(true)
}
