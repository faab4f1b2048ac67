package importer

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"sync"
	"time"

	"github.com/neogo/neo/filestorage"
	"github.com/neogo/neo/pickleref"
	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage/backend"
)

// run imports the source transactions after the last one imported.
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
	src *source
	it  *filestorage.TxnIter
	txn *filestorage.Txn // current head; nil when exhausted
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

// batch is a run of source transactions committed at once.
type batch struct {
	txns    []backend.TxnMeta
	records []backend.Record // Data repickled, not compressed yet
	last    proto.Tid
	bytes   int64 // of source transactions
}

// The import is a pipeline, so that its stages use the CPUs at once:
// read (iterate, merge, repickle) -> compress (in parallel) -> commit.
// Unbuffered channels: a batch is handed on when the next stage takes
// it, so each stage holds one batch. With a batch queued in each (a
// channel of one), BenchmarkImport's peak RSS was 164-171 MB instead of
// 129-136, for the same speed within noise.
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
			total += s.fs.End() - c.txn.Pos
		}
		curs = append(curs, c)
	}
	im.log.Info("importer: importing", "from", start, "to", im.ltid, "bytes", total)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cpus := make(cpuTokens, runtime.GOMAXPROCS(0))
	read, compressed := make(chan *batch), make(chan *batch)
	var wg sync.WaitGroup
	var readErr, compErr error
	wg.Add(2)
	go func() {
		lowPriority()
		defer wg.Done()
		defer close(read)
		if readErr = im.readBatches(ctx, curs, ltid, cpus, read); readErr != nil {
			cancel()
		}
	}()
	go func() {
		lowPriority()
		defer wg.Done()
		defer close(compressed)
		if compErr = im.compressBatches(ctx, cpus, read, compressed); compErr != nil {
			cancel()
		}
	}()
	p := &progress{start: time.Now(), total: total, every: im.opts.ProgressInterval, log: im.log}
	p.last = p.start
	im.prog.Store(p)
	var commitErr error
	committed := make(chan struct{})
	go func() {
		lowPriority()
		defer close(committed)
		cpu0 := threadCPU()
		commitErr = im.commitBatches(ctx, cancel, cpus, compressed, p)
		p.setWriterCPU(threadCPU() - cpu0)
	}()
	<-committed
	wg.Wait()
	for _, err := range []error{readErr, compErr, commitErr} {
		if err != nil {
			return err
		}
	}
	return im.importEnd(ctx, ltid, p)
}

// cpuTokens are the CPUs the import's stages take turns on, one token a
// CPU: the writer holds one for each commit, the reader and the
// compressors one for each tokenBytes of records. Go's scheduler shares
// the CPUs evenly between runnable goroutines, so with both compressors
// running the writer had 2/3 of a CPU; yet its commits are the stage that
// runs on one CPU only and sets the pace of the whole import (a 1.15 GB
// Data.fs: 9.4 of 23 CPU seconds; its thread waiting for the CPU 30% of
// its time). Queued for the next token released, the writer waits a few
// milliseconds at most.
type cpuTokens chan struct{}

func (c cpuTokens) take() { c <- struct{}{} }
func (c cpuTokens) give() { <-c }

// tokenBytes of records are read or compressed under one token: about a
// millisecond of CPU, and few enough handovers that they cost no CPU to
// speak of.
const tokenBytes = 256 << 10

// commitBatches commits the batches in order, each with the tid it ends
// at, and logs the progress. After an error it drains the pipeline.
func (im *Importer) commitBatches(ctx context.Context, cancel context.CancelFunc, cpus cpuTokens, compressed <-chan *batch, p *progress) error {
	var commitErr error
	for b := range compressed {
		if commitErr != nil {
			continue // drain
		}
		cfg := map[string]string{tidKey: fmt.Sprintf("%016x", uint64(b.last))}
		cpus.take()
		err := im.target.ImportTransactions(ctx, b.txns, b.records, cfg)
		cpus.give()
		if err != nil {
			commitErr = fmt.Errorf("importer: commit up to %s: %w", b.last, err)
			cancel()
			continue
		}
		im.tid.Store(uint64(b.last))
		im.log.Debug("importer: committed", "tid", b.last, "transactions", len(b.txns), "records", len(b.records))
		p.add(int64(len(b.txns)), b.bytes)
		p.maybeLog()
	}
	return commitErr
}

// importEnd records the end of the import.
func (im *Importer) importEnd(ctx context.Context, ltid proto.Tid, p *progress) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if ltid < im.ltid {
		// Tests: stopped early on purpose.
		<-ctx.Done()
		return nil
	}
	if proto.Tid(im.tid.Load()) != im.ltid {
		// A source ended before ltid, or nothing was left to import:
		// record that everything is in.
		if err := im.target.ImportTransactions(ctx, nil, nil, map[string]string{tidKey: fmt.Sprintf("%016x", uint64(im.ltid))}); err != nil {
			return fmt.Errorf("importer: commit the end of the import: %w", err)
		}
		im.tid.Store(uint64(im.ltid))
	}
	txns, bytes := p.done()
	el := time.Since(p.start).Seconds()
	// The writer's CPU bounds the import's speed: its commits are the one
	// stage that cannot run on several CPUs.
	im.log.Info("importer: import done", "transactions", txns, "bytes", bytes, "seconds", fmt.Sprintf("%.1f", el),
		"MB/s", fmt.Sprintf("%.1f", float64(bytes)/1e6/max(el, 1e-9)), "writer CPU s", fmt.Sprintf("%.1f", p.writerCPUTime().Seconds()))
	im.allImported()
	// Done last: Wait's callers (tests, neomigrate) read the log once it
	// returns.
	im.done.Store(true)
	return nil
}

// readBatches iterates the sources merged by tid up to ltid and sends
// batches of repickled transactions, cut at BatchBytes or CommitInterval.
func (im *Importer) readBatches(ctx context.Context, curs []*cursor, ltid proto.Tid, cpus cpuTokens, out chan<- *batch) error {
	var (
		w      pickleref.Rewriter
		b      = &batch{}
		size   int
		batchT = time.Now()
		heads  = make([]proto.Tid, len(curs))
		buf    []byte
		t0     = time.Now()
		read   int64
		held   = -1 // bytes read under the token held, -1: none
	)
	release := func() {
		if held >= 0 {
			cpus.give()
			held = -1
		}
	}
	defer release()
	send := func() error {
		release()
		select {
		case out <- b:
		case <-ctx.Done():
			return ctx.Err()
		}
		b, size, batchT = &batch{}, 0, time.Now()
		return nil
	}
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
		if held < 0 {
			cpus.take()
			held = 0
		}
		var m *backend.TxnMeta
		for _, i := range from {
			c := curs[i]
			t := c.txn
			if m == nil {
				b.txns = append(b.txns, backend.TxnMeta{Tid: tid, TTid: tid, User: clone(t.User), Description: clone(t.Description),
					Ext: clone(t.Extension), Packed: t.Status == filestorage.StatusPacked})
				m = &b.txns[len(b.txns)-1]
			}
			n := int64(t.Len) + 8
			b.bytes += n
			read += n
			held += int(n)
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
				switch {
				case d.Data == nil:
				case c.src.identity:
					r.Data = clone(d.Data)
				default:
					if buf, err = c.src.repickle(&w, buf[:0], d.Data, d.Oid, tid); err != nil {
						return err
					}
					r.Data = clone(buf)
				}
				size += len(r.Data) + 64
				m.Oids = append(m.Oids, oid)
				b.records = append(b.records, r)
			}
			if err := c.advance(ltid); err != nil {
				return err
			}
		}
		b.last = tid
		if held >= tokenBytes {
			release()
		}
		if size >= im.opts.BatchBytes || time.Since(batchT) >= im.opts.CommitInterval {
			if err := send(); err != nil {
				return err
			}
		}
		if im.rate > 0 {
			ahead := time.Duration(float64(read)/float64(im.rate)*float64(time.Second)) - time.Since(t0)
			if ahead > 0 {
				if len(b.txns) > 0 && ahead > im.opts.CommitInterval/2 {
					if err := send(); err != nil { // commit what waits
						return err
					}
				}
				release()
				if err := sleep(ctx, ahead); err != nil {
					return err
				}
			}
		}
	}
	if len(b.txns) > 0 {
		return send()
	}
	return nil
}

// compressBatches compresses the records of each batch with all CPUs and
// computes their checksums.
func (im *Importer) compressBatches(ctx context.Context, cpus cpuTokens, in <-chan *batch, out chan<- *batch) error {
	workers := runtime.GOMAXPROCS(0)
	comps := make([]compressor, workers)
	for i := range comps {
		comps[i].cfg = im.conf.Main.Compress
	}
	for b := range in {
		errs := make([]error, workers)
		var wg sync.WaitGroup
		for k := range workers {
			wg.Add(1)
			go func() {
				lowPriority()
				defer wg.Done()
				// Interleaved, so that big records spread.
				held := -1 // bytes compressed under the token held
				defer func() {
					if held >= 0 {
						cpus.give()
					}
				}()
				for i := k; i < len(b.records); i += workers {
					r := &b.records[i]
					if r.Data == nil {
						continue
					}
					if held < 0 {
						cpus.take()
						held = 0
					}
					held += len(r.Data)
					if err := comps[k].record(r, r.Data); err != nil {
						errs[k] = err
						return
					}
					if held >= tokenBytes {
						cpus.give()
						held = -1
					}
				}
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				return err
			}
		}
		select {
		case out <- b:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// progress is the import's advance, logged at a steady pace and
// reported to the admin (ImportProgress).
type progress struct {
	start time.Time
	every time.Duration
	total int64 // bytes of source transactions to import
	log   interface {
		Info(msg string, args ...any)
	}

	mu        sync.Mutex
	last      time.Time // of the last log line
	txns      int64
	bytes     int64         // of source transactions imported
	writerCPU time.Duration // of the commits' thread, once done
}

func (p *progress) setWriterCPU(d time.Duration) {
	p.mu.Lock()
	p.writerCPU = d
	p.mu.Unlock()
}

func (p *progress) writerCPUTime() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.writerCPU
}

func (p *progress) add(txns, bytes int64) {
	p.mu.Lock()
	p.txns += txns
	p.bytes += bytes
	p.mu.Unlock()
}

func (p *progress) done() (txns, bytes int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.txns, p.bytes
}

// rate returns the bytes per second so far and the time left, -1 when
// unknown.
func (p *progress) rate(now time.Time) (txns, bytes int64, perSec float64, left time.Duration) {
	txns, bytes = p.done()
	perSec = float64(bytes) / max(now.Sub(p.start).Seconds(), 1e-9)
	left = -1
	if perSec > 0 {
		left = time.Duration(float64(p.total-bytes) / perSec * float64(time.Second)).Round(time.Second)
	}
	return txns, bytes, perSec, left
}

func (p *progress) maybeLog() {
	now := time.Now()
	p.mu.Lock()
	if now.Sub(p.last) < p.every {
		p.mu.Unlock()
		return
	}
	p.last = now
	p.mu.Unlock()
	txns, bytes, perSec, left := p.rate(now)
	l := "unknown"
	if left >= 0 {
		l = left.String()
	}
	p.log.Info("importer: progress", "transactions", txns, "bytes", bytes, "of", p.total,
		"MB/s", fmt.Sprintf("%.1f", perSec/1e6), "left", l)
}

// report is the one-line form of ImportProgress.
func (p *progress) report(now time.Time) string {
	txns, bytes, perSec, left := p.rate(now)
	pct := 100.0
	if p.total > 0 {
		pct = 100 * float64(bytes) / float64(p.total)
	}
	l := "unknown"
	if left >= 0 {
		l = left.String()
	}
	return fmt.Sprintf("importing %.1f%%: %d transactions, %.1f of %.1f MB, %.1f MB/s, %s left",
		pct, txns, float64(bytes)/1e6, float64(p.total)/1e6, perSec/1e6, l)
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
