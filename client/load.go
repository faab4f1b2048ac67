package client

import (
	"bytes"
	"compress/zlib"
	"context"
	"crypto/sha1"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/neogo/neo/neonet"
	"github.com/neogo/neo/proto"
)

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
// Load waits while the client reconnects to the master, within ctx.
// A cache is meant to sit in front of this method: the answer's serials
// delimit the validity of the data.
func (c *Client) Load(ctx context.Context, oid proto.Oid, before proto.Tid) (Object, error) {
	if before == proto.InvalidTid {
		if _, err := c.waitMaster(ctx); err != nil {
			return Object{}, fmt.Errorf("client: load oid %v: %w", oid, err)
		}
		c.mu.Lock()
		before = c.mu.lastTid + 1
		c.mu.Unlock()
	}
	return c.load(ctx, oid, proto.InvalidTid, before)
}

// LoadSerial loads the revision serial of oid exactly (ZODB loadSerial);
// errors as for [Client.Load], proto.ErrOidNotFound when there is no such
// revision.
func (c *Client) LoadSerial(ctx context.Context, oid proto.Oid, serial proto.Tid) (Object, error) {
	return c.load(ctx, oid, serial, proto.InvalidTid)
}

// retryDelay bounds the pause between two rounds of attempts of a read
// over every readable cell.
const retryDelay = 200 * time.Millisecond

// load asks AskObject(oid, at, before) to the readable cells of oid's
// partition in turn (cluster.md §7.2), round after round until one
// answers or ctx ends.
func (c *Client) load(ctx context.Context, oid proto.Oid, at, before proto.Tid) (Object, error) {
	var lastErr error
	var badSum *ChecksumError
	for round := 0; ; round++ {
		if _, err := c.waitMaster(ctx); err != nil {
			return Object{}, fmt.Errorf("client: load oid %v: %w", oid, errors.Join(err, lastErr))
		}
		c.mu.Lock()
		pt, _ := c.stateLocked()
		var cand []proto.NodeID
		if pt != nil {
			cand = c.readCandidatesLocked(pt, pt.OidPartition(oid), time.Now())
		}
		c.mu.Unlock()
		badSum = nil
		sums := 0
		for _, nid := range cand {
			obj, err := c.loadFrom(ctx, nid, oid, at, before)
			var ce *ChecksumError
			switch {
			case err == nil:
				return obj, nil
			case errors.As(err, &ce):
				badSum = ce
				sums++
				c.log.Warn("wrong checksum; trying another cell", "oid", oid, "serial", ce.Serial, "nid", nid)
				continue
			case errors.Is(err, proto.ErrOidNotFound), errors.Is(err, proto.ErrOidDoesNotExist):
				return Object{}, fmt.Errorf("client: load oid %v: %w", oid, err)
			case ctx.Err() != nil:
				return Object{}, fmt.Errorf("client: load oid %v: %w", oid, errors.Join(context.Cause(ctx), err))
			}
			lastErr = err
		}
		if badSum != nil && sums == len(cand) {
			return Object{}, badSum
		}
		if lastErr == nil {
			lastErr = fmt.Errorf("partition of oid %v: %w", oid, ErrNoStorage)
		}
		// Every cell failed: the table may be changing, or the master
		// being lost. Sync with the master, then try again.
		c.log.Debug("no storage could serve a load; retrying", "oid", oid, "err", lastErr)
		t := time.NewTimer(min(time.Duration(round+1)*20*time.Millisecond, retryDelay))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return Object{}, fmt.Errorf("client: load oid %v: %w", oid, errors.Join(context.Cause(ctx), lastErr))
		case <-c.ctx.Done():
			t.Stop()
			return Object{}, ErrClosed
		}
		if err := c.Sync(ctx); err != nil && ctx.Err() != nil {
			return Object{}, fmt.Errorf("client: load oid %v: %w", oid, errors.Join(err, lastErr))
		}
	}
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
		return Object{}, fmt.Errorf("oid %v serial %v: object creation undone or deleted: %w", ans.Oid, ans.Serial, proto.ErrOidDoesNotExist)
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

func decompress(b []byte) ([]byte, error) {
	r, err := zlib.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}
