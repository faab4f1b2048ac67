package filestorage

import (
	"errors"
	"io"
)

// defaultWindow is the buffer size of sequential reads: big enough that
// a scan issues few system calls, small enough to be irrelevant next to
// the index.
const defaultWindow = 256 << 10

// seqReader reads a file through one window of bytes, refilled forward
// (or backward) when a read falls outside it. Memory is bounded by the
// window size or the largest single read, whichever is bigger.
// Not safe for concurrent use.
type seqReader struct {
	r      io.ReaderAt
	size   int64 // bytes beyond size are never read
	window int
	buf    []byte
	off    int64 // file offset of buf[0]
	n      int   // valid bytes in buf
}

func newSeqReader(r io.ReaderAt, size int64, window int) *seqReader {
	if window <= 0 {
		window = defaultWindow
	}
	return &seqReader{r: r, size: size, window: window}
}

// at returns the n bytes at pos, reading them if they are not in the
// window. The slice is valid until the next call. backward says which
// way the caller is going: the refilled window then ends at pos+n rather
// than starting at pos. Fewer than n bytes before size give
// io.ErrUnexpectedEOF, none at all io.EOF.
func (s *seqReader) at(pos int64, n int, backward bool) ([]byte, error) {
	if pos < 0 || n < 0 {
		return nil, errors.New("negative position or length")
	}
	if pos >= s.size && n > 0 {
		return nil, io.EOF
	}
	if int64(n) > s.size-pos {
		return nil, io.ErrUnexpectedEOF
	}
	if pos >= s.off && pos+int64(n) <= s.off+int64(s.n) {
		i := int(pos - s.off)
		return s.buf[i : i+n : i+n], nil
	}
	w := max(s.window, n)
	if cap(s.buf) < w {
		s.buf = make([]byte, w)
	}
	s.buf = s.buf[:cap(s.buf)]
	start := pos
	if backward {
		start = max(0, pos+int64(n)-int64(len(s.buf)))
	}
	m := int(min(int64(len(s.buf)), s.size-start))
	got, err := s.r.ReadAt(s.buf[:m], start)
	if got < m {
		s.n = 0
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	s.off, s.n = start, m
	i := int(pos - start)
	return s.buf[i : i+n : i+n], nil
}

// shrink drops a window grown beyond the default by a big read.
func (s *seqReader) shrink() {
	if cap(s.buf) > 4*s.window {
		s.buf, s.n = nil, 0
	}
}
