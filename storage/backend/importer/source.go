package importer

import (
	"bytes"
	"crypto/sha1"
	"errors"
	"fmt"
	"sync"

	"github.com/klauspost/compress/zlib"
	"github.com/neogo/neo/filestorage"
	"github.com/neogo/neo/importconf"
	"github.com/neogo/neo/pickleref"
	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage/backend"
)

// source is a source database: its FileStorage and how its oids move into
// the imported space.
type source struct {
	name  string
	fs    *filestorage.Storage
	shift pickleref.Shift
	// identity: the records keep their bytes (the root database of a
	// single-source import).
	identity bool
	rng      oidRange
}

// rewriters serve the reads that repickle; the import loop has its own.
var rewriters = sync.Pool{New: func() any { return new(pickleref.Rewriter) }}

// repickle appends to dst the record data with its references moved into
// the imported space.
func (s *source) repickle(w *pickleref.Rewriter, dst, data []byte, oid proto.Oid, tid proto.Tid) ([]byte, error) {
	if s.identity {
		return append(dst, data...), nil
	}
	out, err := w.Rewrite(dst, data, s.shift.Map)
	if err != nil {
		return dst, fmt.Errorf("source %s: repickle oid %s at %s: %w", s.name, oid, tid, err)
	}
	return out, nil
}

// load answers a read from the source: the revision of oid (in the
// imported space) before before, repickled, with its source's next serial
// (0 if none). Errors: backend.ErrOidDoesNotExist if the source does not
// know the oid, backend.ErrOidNotFound if it has no revision before.
func (s *source) load(oid proto.Oid, before proto.Tid) (*backend.Object, proto.Tid, error) {
	local := oid - proto.Oid(s.shift.Offset)
	rev, err := s.fs.LoadRevision(local, before)
	switch {
	case errors.Is(err, filestorage.ErrNoRevision):
		return nil, 0, fmt.Errorf("load oid %s before %s from source %s: %w", oid, before, s.name, backend.ErrOidNotFound)
	case errors.Is(err, filestorage.ErrNotFound):
		return nil, 0, fmt.Errorf("load oid %s from source %s: %w", oid, s.name, backend.ErrOidDoesNotExist)
	case err != nil:
		return nil, 0, fmt.Errorf("load oid %s before %s from source %s: %w", oid, before, s.name, err)
	}
	o := &backend.Object{}
	o.Oid, o.Serial, o.DataSerial = oid, rev.Serial, proto.InvalidTid
	if rev.DataTid != 0 {
		o.DataSerial = rev.DataTid
	}
	if rev.Data != nil {
		w := rewriters.Get().(*pickleref.Rewriter)
		o.Data, err = s.repickle(w, nil, rev.Data, oid, rev.Serial)
		rewriters.Put(w)
		if err != nil {
			return nil, 0, err
		}
		o.Checksum = sha1.Sum(o.Data)
	}
	return o, rev.Next, nil
}

// compressor compresses records as the "compress" option says: zlib,
// kept only when strictly smaller (cluster.md §8.3). "true" or "zlib"
// without a level is level 1 (our client's choice, see client/txn.go):
// klauspost/compress at level 1 is several times faster than the
// standard library's default level, and its output is plain zlib.
type compressor struct {
	cfg importconf.Compress
	buf bytes.Buffer
	zw  *zlib.Writer
}

// record fills r's Compression, Checksum and Data from data, which r may
// keep.
func (c *compressor) record(r *backend.Record, data []byte) error {
	r.Compression, r.Data = 0, data
	if c.cfg.Enabled && len(data) > 0 {
		c.buf.Reset()
		if c.zw == nil {
			level := zlib.BestSpeed
			if c.cfg.Level != 0 {
				level = c.cfg.Level
			}
			var err error
			if c.zw, err = zlib.NewWriterLevel(&c.buf, level); err != nil {
				return fmt.Errorf("compress level %d: %w", c.cfg.Level, err)
			}
		} else {
			c.zw.Reset(&c.buf)
		}
		c.zw.Write(data)
		if err := c.zw.Close(); err != nil {
			return fmt.Errorf("compress oid %s: %w", r.Oid, err)
		}
		if c.buf.Len() < len(data) {
			r.Compression, r.Data = 1, bytes.Clone(c.buf.Bytes())
		}
	}
	r.Checksum = sha1.Sum(r.Data)
	return nil
}
