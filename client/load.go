package client

import (
	"bytes"
	"context"
	"crypto/sha1"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/klauspost/compress/zlib"
	"github.com/neogo/neo/neonet"
	"github.com/neogo/neo/proto"
)

// errDeleted marks a load that found a deletion: the iterator reports it
// as a record without data.
var errDeleted = errors.New("object creation undone or deleted")

// zeroHash is the checksum of "no data" (deletion, creation undone).
var zeroHash [sha1.Size]byte

// Object is one revision of an object as loaded.
type Object struct {
	// Data is the object's record, decompressed; it belongs to the caller.
	Data []byte
	// Serial is the tid of the revision.
	Serial proto.Tid
	// NextSerial is the tid of the next revision, InvalidTid if it is
	// the last one known by the storage.
	NextSerial proto.Tid
	// DataSerial is, for a revision made by undo, the revision whose data
	// it shares; InvalidTid otherwise.
	DataSerial proto.Tid
}

// Load loads the revision of oid current just before tid before: the one
// with the greatest serial < before (ZODB loadBefore). before =
// proto.InvalidTid means the current revision as of the last invalidation
// processed (last tid + 1, cluster.md §6.11). An oid without any record
// gives an error matching proto.ErrOidDoesNotExist; an oid with no
// revision before `before`, proto.ErrOidNotFound; a deleted object (or
// its creation undone), proto.ErrOidDoesNotExist. Data whose checksum
// does not match on every readable cell gives a *ChecksumError.
//
// When no storage can serve the read (cluster.md §7.2), Load gives up
// rather than waiting for one: with a *NoStorageError (matching
// [ErrNoStorage]) when every readable cell failed twice, with a master
// sync in between; with an error matching [ErrMasterLost] when the
// master connection, hence the partition table, was lost meanwhile or
// the cluster left operation. Both are worth a retry later.
//
// Load waits while the client reconnects to the master, within ctx,
// unless the master told that the cluster left operation.
// A cache is meant to sit in front of this method: the answer's serials
// delimit the validity of the data.
func (c *Client) Load(ctx context.Context, oid proto.Oid, before proto.Tid) (Object, error) {
	return c.load(ctx, oid, proto.InvalidTid, before)
}

// LoadSerial loads the revision serial of oid exactly (ZODB loadSerial);
// errors as for [Client.Load], proto.ErrOidNotFound when there is no such
// revision.
func (c *Client) LoadSerial(ctx context.Context, oid proto.Oid, serial proto.Tid) (Object, error) {
	return c.load(ctx, oid, serial, proto.InvalidTid)
}

// NoStorageError reports a read that no storage could serve: every
// readable cell of the partition failed in two rounds, the master being
// asked in between (cluster.md §7.2).
type NoStorageError struct {
	Oid       proto.Oid
	Partition uint32
	Cells     int   // readable cells of the partition
	Err       error // the last failure
}

func (e *NoStorageError) Error() string {
	return fmt.Sprintf("client: no storage available for oid %v (partition %d, %d readable cells): %v",
		e.Oid, e.Partition, e.Cells, e.Err)
}

// Is makes errors.Is(err, ErrNoStorage) work.
func (e *NoStorageError) Is(target error) bool { return target == ErrNoStorage }

func (e *NoStorageError) Unwrap() error { return e.Err }

// retryDelay bounds the pause between two rounds of a read that only
// met NON_READABLE_CELL, or no readable cell at all.
const retryDelay = 200 * time.Millisecond

// load asks AskObject(oid, at, before) to the readable cells of oid's
// partition in turn (cluster.md §7.2). When every cell failed it syncs
// with the master and tries again, giving up once the failures
// outnumber the cells or the master connection is lost.
func (c *Client) load(ctx context.Context, oid proto.Oid, at, before proto.Tid) (Object, error) {
	mc, err := c.waitMasterForRead(ctx)
	if err != nil {
		return Object{}, fmt.Errorf("client: load oid %v: %w", oid, err)
	}
	if at == proto.InvalidTid && before == proto.InvalidTid {
		c.mu.Lock()
		before = c.mu.readTid + 1
		c.mu.Unlock()
	}
	var lastErr error
	failures := 0
	var candBuf [4]proto.NodeID // replicas + 1 cells fit: no allocation
	for round := 0; ; round++ {
		c.mu.Lock()
		var cand []proto.NodeID
		var part uint32
		filled := c.mu.master == mc && mc.pt != nil
		if filled {
			part = mc.pt.OidPartition(oid)
			cand = c.readCandidatesLocked(candBuf[:0], mc.pt, part, time.Now())
		}
		c.mu.Unlock()
		if !filled {
			return Object{}, loadError(oid, fmt.Errorf("partition table lost: %w", ErrMasterLost), lastErr)
		}
		var badSum *ChecksumError
		sums := 0
		for _, nid := range cand {
			obj, err := c.loadFrom(ctx, nid, oid, at, before)
			if err == nil {
				return obj, nil
			}
			// Declared here, not before: errors.As makes them escape,
			// which would cost two allocations to every load.
			var ce *ChecksumError
			var perr *proto.Error
			switch {
			case errors.As(err, &ce):
				badSum = ce
				sums++
				c.log.Warn("wrong checksum; trying another cell", "oid", oid, "serial", ce.Serial, "nid", nid)
				continue
			case errors.Is(err, proto.ErrOidNotFound), errors.Is(err, proto.ErrOidDoesNotExist):
				return Object{}, fmt.Errorf("client: load oid %v: %w", oid, err)
			case ctx.Err() != nil:
				return Object{}, loadError(oid, context.Cause(ctx), err)
			case errors.Is(err, ErrClosed):
				return Object{}, fmt.Errorf("client: load oid %v: %w", oid, err)
			case errors.As(err, &perr) && perr.Code == proto.NON_READABLE_CELL:
				// A partition table race, not a failure (§7.2).
			default:
				failures++
			}
			lastErr = err
		}
		if badSum != nil && sums == len(cand) {
			return Object{}, badSum
		}
		if mc.lost() {
			return Object{}, loadError(oid, fmt.Errorf("partition table lost: %w", ErrMasterLost), lastErr)
		}
		if failures > len(cand) {
			return Object{}, &NoStorageError{Oid: oid, Partition: part, Cells: len(cand), Err: lastErr}
		}
		c.log.Debug("no storage could serve a load; syncing with the master", "oid", oid, "err", lastErr)
		if len(cand) == 0 || round > 0 {
			// Nothing readable, or only NON_READABLE_CELL answers
			// (a table change on the way): pause rather than spin.
			t := time.NewTimer(min(time.Duration(round+1)*20*time.Millisecond, retryDelay))
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return Object{}, fmt.Errorf("client: load oid %v: no readable cell: %w", oid, context.Cause(ctx))
			case <-c.ctx.Done():
				t.Stop()
				return Object{}, ErrClosed
			}
		}
		// The sync is with this connection only: its loss ends the read.
		if err := mc.barrier(ctx); err != nil {
			if ctx.Err() != nil {
				return Object{}, loadError(oid, context.Cause(ctx), lastErr)
			}
			return Object{}, loadError(oid, fmt.Errorf("sync with the master: %w: %w", ErrMasterLost, err), lastErr)
		}
	}
}

// loadError says why a read of oid failed, and the last failure of a
// storage before, if any.
func loadError(oid proto.Oid, err, last error) error {
	if last == nil {
		return fmt.Errorf("client: load oid %v: %w", oid, err)
	}
	return fmt.Errorf("client: load oid %v: %w (last failure: %w)", oid, err, last)
}

// loadFrom asks one storage for an object and checks the answer.
func (c *Client) loadFrom(ctx context.Context, nid proto.NodeID, oid proto.Oid, at, before proto.Tid) (Object, error) {
	link, err := c.storage(ctx, nid)
	if err != nil {
		return Object{}, err
	}
	var ans proto.AnswerObject
	err = link.Ask(ctx, &proto.AskObject{Oid: oid, At: at, Before: before}, &ans)
	if err != nil {
		var perr *proto.Error
		switch {
		case errors.As(err, &perr) && perr.Code == proto.NON_READABLE_CELL:
			// A partition table race, not a failure (§7.2).
		case errors.As(err, &perr) && (perr.Code == proto.OID_NOT_FOUND || perr.Code == proto.OID_DOES_NOT_EXIST):
		case ctx.Err() != nil:
		case errors.Is(err, neonet.ErrClosed) || errors.As(err, &perr):
			c.storageFailed(nid, link)
		}
		return Object{}, fmt.Errorf("storage %v: %w", nid, err)
	}
	if c.testHookAnswer != nil {
		c.testHookAnswer(&ans)
	}
	return decodeObject(nid, &ans)
}

// decodeObject verifies the checksum of an answer and decompresses it.
func decodeObject(nid proto.NodeID, ans *proto.AnswerObject) (Object, error) {
	obj := Object{Serial: ans.Serial, NextSerial: ans.NextSerial, DataSerial: ans.DataSerial}
	if len(ans.Data) == 0 && bytes.Equal(ans.Checksum, zeroHash[:]) {
		return Object{}, fmt.Errorf("oid %v serial %v: %w: %w", ans.Oid, ans.Serial, errDeleted, proto.ErrOidDoesNotExist)
	}
	if sum := sha1.Sum(ans.Data); !bytes.Equal(sum[:], ans.Checksum) {
		return Object{}, &ChecksumError{Oid: ans.Oid, Serial: ans.Serial, Node: nid}
	}
	comp, _ := ans.Compression.Get()
	switch comp {
	case 0:
		obj.Data = ans.Data
	case 1:
		data, err := decompress(ans.Data)
		if err != nil {
			return Object{}, fmt.Errorf("oid %v serial %v from %v: decompress: %w", ans.Oid, ans.Serial, nid, err)
		}
		obj.Data = data
	default:
		return Object{}, fmt.Errorf("oid %v serial %v from %v: unknown compression %d", ans.Oid, ans.Serial, nid, comp)
	}
	return obj, nil
}

// decompress returns the zlib-decompressed b in a new slice of its exact
// size. The reader and its window are reused: a new zlib reader costs
// more than decompressing a small object.
func decompress(b []byte) ([]byte, error) {
	d := inflaters.Get().(*inflater)
	defer inflaters.Put(d)
	d.in.Reset(b)
	var err error
	if d.zr == nil {
		d.zr, err = zlib.NewReader(&d.in)
	} else {
		err = d.zr.(zlib.Resetter).Reset(&d.in, nil)
	}
	if err != nil {
		d.zr = nil // unusable after a failed reset
		return nil, err
	}
	d.out.Reset()
	_, err = d.out.ReadFrom(d.zr)
	if err != nil {
		return nil, err
	}
	data := bytes.Clone(d.out.Bytes())
	if d.out.Cap() > maxPooledCompBuf {
		d.out = bytes.Buffer{}
	}
	return data, nil
}

// inflater is the reusable state of decompress.
type inflater struct {
	in  bytes.Reader
	zr  io.ReadCloser // nil until the first valid input
	out bytes.Buffer
}

var inflaters = sync.Pool{New: func() any { return new(inflater) }}
