package importer

import (
	"bytes"
	"compress/zlib"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/neogo/neo/filestorage"
	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage/backend"
)

// Writeback (cluster.md §8.10): the transactions committed to the node
// are copied into the (single) source Data.fs, as ZODB's
// copyTransactionsFrom would, so that the site can go back to it. A pass
// runs after each commit and partition table change, in the background;
// Close makes a last one.

// writebackChunk bounds the tids asked per partition at once.
const writebackChunk = 1000

// kickWriteback asks for a pass, without waiting.
func (im *Importer) kickWriteback() {
	if im.wbKick == nil {
		return
	}
	select {
	case im.wbKick <- struct{}{}:
	default:
	}
}

func (im *Importer) writebackLoop(ctx context.Context) {
	for {
		select {
		case <-im.wbKick:
		case <-ctx.Done():
			return
		}
		if err := im.writebackPass(ctx); err != nil && ctx.Err() == nil {
			im.log.Error("importer: writeback failed; retried after the next commit", "err", err)
		}
	}
}

// writebackPass copies every committed transaction after the source's
// last one.
func (im *Importer) writebackPass(ctx context.Context) error {
	im.wbMu.Lock()
	defer im.wbMu.Unlock()
	s := im.sources[0]
	_, _, cells, err := im.Backend.PartitionTable(ctx)
	if err != nil || len(cells) == 0 {
		return err
	}
	var np uint32
	for _, c := range cells {
		np = max(np, c.Partition+1)
	}
	for {
		from := max(s.fs.LastTid(), im.ltid) + 1
		// The tids of every partition up to the smallest last tid of
		// a full chunk: nothing before it is missed.
		var tids []proto.Tid
		limit := proto.MaxTid
		for p := range np {
			l, err := im.Backend.TIDsFrom(ctx, p, from, proto.MaxTid, writebackChunk)
			if err != nil {
				return fmt.Errorf("writeback: tids of partition %d from %s: %w", p, from, err)
			}
			if len(l) == writebackChunk {
				limit = min(limit, l[len(l)-1])
			}
			tids = append(tids, l...)
		}
		if len(tids) == 0 {
			return nil
		}
		slices.Sort(tids)
		for _, tid := range tids {
			if tid > limit {
				break
			}
			if err := im.writebackTxn(ctx, s.fs, tid); err != nil {
				return err
			}
		}
		if limit == proto.MaxTid {
			return nil
		}
	}
}

// writebackTxn appends the transaction tid to fs.
func (im *Importer) writebackTxn(ctx context.Context, fs *filestorage.Storage, tid proto.Tid) error {
	m, err := im.Backend.Transaction(ctx, tid)
	if err != nil {
		return fmt.Errorf("writeback: %w", err)
	}
	var recs []filestorage.Record
	for _, oid := range m.Oids {
		o, err := im.Backend.Load(ctx, oid, tid, proto.InvalidTid)
		if errors.Is(err, backend.ErrOidNotFound) || errors.Is(err, backend.ErrOidDoesNotExist) {
			continue // only checked in that transaction
		}
		if err != nil {
			return fmt.Errorf("writeback: transaction %s: %w", tid, err)
		}
		r := filestorage.Record{Oid: oid}
		if o.HasData() {
			if r.Data, err = decompress(o); err != nil {
				return fmt.Errorf("writeback: oid %s at %s: %w", oid, tid, err)
			}
			if r.Data == nil {
				r.Data = []byte{}
			}
		}
		if o.DataSerial != proto.InvalidTid && r.Data != nil {
			r.DataTid = o.DataSerial // a back-pointer if the data is the same
		}
		recs = append(recs, r)
	}
	tw, err := fs.Begin(filestorage.TxnMeta{Tid: tid, User: m.User, Description: m.Description, Extension: m.Ext})
	if err != nil {
		return fmt.Errorf("writeback: transaction %s: %w", tid, err)
	}
	for _, r := range recs {
		if err := tw.Store(r); err != nil {
			tw.Abort()
			return fmt.Errorf("writeback: transaction %s: %w", tid, err)
		}
	}
	if err := tw.Commit(); err != nil {
		return fmt.Errorf("writeback: transaction %s: %w", tid, err)
	}
	return nil
}

func decompress(o *backend.Object) ([]byte, error) {
	if o.Compression == 0 {
		return o.Data, nil
	}
	zr, err := zlib.NewReader(bytes.NewReader(o.Data))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(zr)
}

// UnlockTransaction implements [backend.Backend]: a commit is written back.
func (im *Importer) UnlockTransaction(ctx context.Context, ttid, tid proto.Tid) error {
	err := im.Backend.UnlockTransaction(ctx, ttid, tid)
	if err == nil {
		im.kickWriteback()
	}
	return err
}

// ValidateTransaction implements [backend.Backend]: a commit is written
// back.
func (im *Importer) ValidateTransaction(ctx context.Context, ttid, tid proto.Tid) error {
	err := im.Backend.ValidateTransaction(ctx, ttid, tid)
	if err == nil {
		im.kickWriteback()
	}
	return err
}

// finalWriteback makes the last pass of Close.
func (im *Importer) finalWriteback() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := im.writebackPass(ctx); err != nil {
		im.log.Error("importer: last writeback failed", "err", err)
	}
}
