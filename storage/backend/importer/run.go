package importer

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/neogo/neo/filestorage"
	"github.com/neogo/neo/pickleref"
	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage/backend"
)

// run imports the source transactions after the last one imported, in
// batches, each committed with the tid it ends at.
func (im *Importer) run(ctx context.Context) error {
	select {
	case <-im.ptReady:
	case <-ctx.Done():
		return nil
	}
	err := im.importAll(ctx)
	if err != nil && ctx.Err() == nil {
		im.log.Error("importer: import failed; reads are still served from the sources", "err", err)
	}
	return err
}

// cursor is a source being iterated.
type cursor struct {
	src  *source
	it   *filestorage.TxnIter
	txn  *filestorage.Txn // current head; nil when exhausted
	from int64            // position of the first transaction to import
}

func (c *cursor) advance(ltid proto.Tid) error {
	t, err := c.it.NextTxn()
	switch {
	case err == io.EOF:
		c.txn = nil
	case err != nil:
		return fmt.Errorf("importer: source %s: %w", c.src.name, err)
	case t.Tid > ltid:
		c.txn = nil
	default:
		c.txn = t
	}
	return nil
}

func (im *Importer) importAll(ctx context.Context) error {
	start := proto.Tid(im.tid.Load()) + 1
	ltid := im.ltid
	if im.opts.stopBefore != 0 && im.opts.stopBefore <= ltid {
		ltid = im.opts.stopBefore - 1
	}
	var curs []*cursor
	var total int64
	for _, s := range im.sourcesInConfOrder() {
		c := &cursor{src: s, it: s.fs.Iterate(start)}
		if err := c.advance(ltid); err != nil {
			return err
		}
		if c.txn != nil {
			c.from = c.txn.Pos
			total += s.fs.End() - c.from
		}
		curs = append(curs, c)
	}
	im.log.Info("importer: importing", "from", start, "to", im.ltid, "bytes", total)

	p := progress{start: time.Now(), total: total, every: im.opts.ProgressInterval, log: im.log}
	p.last = p.start
	var (
		w       pickleref.Rewriter
		comp    = compressor{cfg: im.conf.Main.Compress}
		txns    []backend.TxnMeta
		records []backend.Record
		size    int
		batchT  = time.Now()
		heads   = make([]proto.Tid, len(curs))
		buf     []byte
	)
	commit := func(tid proto.Tid) error {
		if len(txns) == 0 {
			return nil
		}
		cfg := map[string]string{tidKey: fmt.Sprintf("%016x", uint64(tid))}
		if err := im.target.ImportTransactions(ctx, txns, records, cfg); err != nil {
			return fmt.Errorf("importer: commit up to %s: %w", tid, err)
		}
		im.tid.Store(uint64(tid))
		im.log.Debug("importer: committed", "tid", tid, "transactions", len(txns), "records", len(records))
		clear(txns)
		clear(records)
		txns, records, size, batchT = txns[:0], records[:0], 0, time.Now()
		return nil
	}
	var last proto.Tid
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		for i, c := range curs {
			heads[i] = proto.InvalidTid
			if c.txn != nil {
				heads[i] = c.txn.Tid
			}
		}
		tid, from, ok := nextTid(heads)
		if !ok {
			break
		}
		var m *backend.TxnMeta
		for _, i := range from {
			c := curs[i]
			t := c.txn
			if m == nil {
				txns = append(txns, backend.TxnMeta{Tid: tid, TTid: tid, User: clone(t.User), Description: clone(t.Description),
					Ext: clone(t.Extension), Packed: t.Status == filestorage.StatusPacked})
				m = &txns[len(txns)-1]
			}
			p.bytes += int64(t.Len) + 8
			for {
				d, err := c.it.NextData()
				if err == io.EOF {
					break
				}
				if err != nil {
					return fmt.Errorf("importer: source %s: %w", c.src.name, err)
				}
				oid := d.Oid + proto.Oid(c.src.shift.Offset)
				r := backend.Record{Oid: oid, Serial: tid, DataSerial: proto.InvalidTid}
				if d.Back != 0 && d.DataTid != 0 {
					r.DataSerial = d.DataTid
				}
				if d.Data != nil {
					if buf, err = c.src.repickle(&w, buf[:0], d.Data, d.Oid, tid); err != nil {
						return err
					}
					if err := comp.record(&r, buf); err != nil {
						return err
					}
					if r.Compression == 0 {
						r.Data = clone(buf)
					}
				}
				size += len(r.Data) + 64
				m.Oids = append(m.Oids, oid)
				records = append(records, r)
			}
			if err := c.advance(ltid); err != nil {
				return err
			}
		}
		p.txns++
		last = tid
		if im.rate > 0 {
			ahead := time.Duration(float64(p.bytes)/float64(im.rate)*float64(time.Second)) - time.Since(p.start)
			if ahead > 0 {
				if err := sleep(ctx, ahead); err != nil {
					return err
				}
			}
		}
		if size >= im.opts.BatchBytes || time.Since(batchT) >= im.opts.CommitInterval {
			if err := commit(tid); err != nil {
				return err
			}
		}
		p.maybeLog()
	}
	if err := commit(last); err != nil {
		return err
	}
	if ltid < im.ltid {
		// Tests: stopped early on purpose.
		<-ctx.Done()
		return nil
	}
	im.tid.Store(uint64(im.ltid))
	if last != im.ltid {
		// Nothing left to import, or a source ended on a transaction
		// before ltid: record that everything is in.
		if err := im.target.ImportTransactions(ctx, nil, nil, map[string]string{tidKey: fmt.Sprintf("%016x", uint64(im.ltid))}); err != nil {
			return fmt.Errorf("importer: commit the end of the import: %w", err)
		}
	}
	im.done.Store(true)
	p.log.Info("importer: import done", "transactions", p.txns, "bytes", p.bytes, "seconds", time.Since(p.start).Seconds())
	im.allImported()
	return nil
}

// progress logs the import's advance at a steady pace.
type progress struct {
	start, last time.Time
	every       time.Duration
	txns        int64
	bytes       int64 // of source transactions read
	total       int64
	log         interface {
		Info(msg string, args ...any)
	}
}

func (p *progress) maybeLog() {
	now := time.Now()
	if now.Sub(p.last) < p.every {
		return
	}
	p.last = now
	el := now.Sub(p.start).Seconds()
	rate := float64(p.bytes) / el
	left := "unknown"
	if rate > 0 {
		left = (time.Duration(float64(p.total-p.bytes)/rate) * time.Second).Round(time.Second).String()
	}
	p.log.Info("importer: progress", "transactions", p.txns, "bytes", p.bytes, "of", p.total,
		"MB/s", fmt.Sprintf("%.1f", rate/1e6), "left", left)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
