package importer

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/neogo/neo/filestorage"
	"github.com/neogo/neo/importconf"
	"github.com/neogo/neo/internal/bytesize"
	"github.com/neogo/neo/pickleref"
	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage/backend"
)

// Configuration entries of the destination backend.
const (
	// setupKey holds the renumbering computed at the first start (JSON):
	// the role of neoppod's config.zodb. Clearing it and restarting
	// imports the source transactions committed since (incremental mode).
	setupKey = "zodb"
	// tidKey holds the last source tid imported (16 hex digits), written
	// in the same commit as the records: where the import resumes.
	tidKey = "zodb_tid"
)

// rateOption is an option of the first section of importer.conf that is
// ours (neoppod ignores it): the most bytes of source transactions the
// import reads per second, with an optional K, M or G suffix (powers of
// 1024); 0, the default, is no limit. It bounds the I/O an import takes
// from a node that serves clients.
const rateOption = "import_rate"

// importPageSize is the page size of a SQLite destination the Importer
// creates: 16 KiB pages rather than SQLite's 4 KiB take a quarter of the
// write(2) and read(2) calls per MB imported (WAL frames and checkpoints
// are one page each; strace of BenchmarkImport, 200 MB: pwrite64 240,676
// -> 65,530, pread64 85,471 -> 29,528) and fewer B-tree splits: 20% more
// MB imported per CPU second (medians of 3, compress=true 45.4 -> 55.0,
// compress=false 72.6 -> 87.0, load average 21-25). The database stays
// an ordinary SQLite file that neoppod opens.
const importPageSize = 16 << 10

func parseRate(s string) (int64, error) {
	n, err := bytesize.Parse(s)
	if err != nil {
		return 0, fmt.Errorf("not a number of bytes per second: %w", err)
	}
	return n, nil
}

// Options tune an Importer.
type Options struct {
	backend.Options
	// BatchBytes: a batch of imported transactions is committed when it
	// holds this many bytes of records (default 16 MiB) ...
	BatchBytes int
	// CommitInterval: ... or when it is this old (default 1 s).
	CommitInterval time.Duration
	// ProgressInterval: how often progress is logged (default 10 s).
	ProgressInterval time.Duration

	// stopBefore, for tests: the import stops before this tid, as if
	// the sources ended there (reads still see the whole sources).
	stopBefore proto.Tid
}

// Importer is the Importer backend: the destination backend of the
// configuration, with the sources served and imported in the background.
// Methods it does not override go to the destination.
type Importer struct {
	backend.Backend
	target  backend.BulkImporter
	log     *slog.Logger
	opts    Options
	conf    *importconf.Config
	sources []*source // by oid range
	ranges  []oidRange
	ltid    proto.Tid // last tid of the sources
	loid    proto.Oid // last oid of the imported space
	first   proto.Tid // first tid of the sources, InvalidTid if none
	rate    int64     // import_rate: bytes of source per second, 0 = no limit

	tid     atomic.Uint64            // last tid imported (0: none)
	prog    atomic.Pointer[progress] // of the import running, nil before
	done    atomic.Bool
	newOids newOids

	ptReady     chan struct{}
	ptReadyOnce sync.Once
	cancel      context.CancelFunc
	wg          sync.WaitGroup
	runErr      error // of the import goroutine, after wg
	closeOnce   sync.Once
	closeErr    error

	// writeback
	wbKick chan struct{} // nil without writeback
	wbMu   sync.Mutex    // one pass at a time
}

// savedSetup is the JSON of setupKey.
type savedSetup struct {
	// Ltid is the sources' last tid at setup: transactions the sources
	// got since are not imported, unless the setup is cleared.
	Ltid    uint64        `json:"ltid"`
	Loid    uint64        `json:"loid"`
	Sources []savedSource `json:"sources"`
}

type savedSource struct {
	Name   string            `json:"name"`
	Offset uint64            `json:"offset"`
	Next   uint64            `json:"next"`
	Mount  map[string]uint64 `json:"mount,omitempty"`
}

// Open opens the Importer backend configured by the importer.conf at path.
func Open(ctx context.Context, path string, opts Options) (*Importer, error) {
	conf, err := importconf.Load(path)
	if err != nil {
		return nil, err
	}
	return OpenConfig(ctx, conf, opts)
}

// OpenConfig opens the Importer backend of a parsed configuration.
func OpenConfig(ctx context.Context, conf *importconf.Config, opts Options) (_ *Importer, err error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.BatchBytes <= 0 {
		// Each commit rewrites every leaf of obj's primary key that its
		// updated oids fall in, scattered over the whole table: the
		// bigger the batch, the fewer times a leaf is written. 8 -> 16
		// MiB: 20% more MB per CPU second of the writer (BenchmarkImport
		// of a 1.15 GB Data.fs, compress=true, medians: 102 -> 123;
		// 32 MiB: 126, for twice the memory).
		opts.BatchBytes = 16 << 20
	}
	if opts.CommitInterval <= 0 {
		opts.CommitInterval = time.Second
	}
	if opts.ProgressInterval <= 0 {
		opts.ProgressInterval = 10 * time.Second
	}
	rate := int64(0)
	for _, o := range conf.Main.Unknown {
		if o.Name == rateOption {
			r, err := parseRate(o.Value)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: [%s] %s=%s: %w", conf.File, o.Line, conf.Main.Section, o.Name, o.Value, err)
			}
			rate = r
			continue
		}
		log.Warn("importer: option ignored", "file", conf.File, "section", conf.Main.Section, "option", o.Name, "line", o.Line)
	}
	var dsn string
	switch strings.ToLower(conf.Main.Adapter) {
	case "sqlite":
		dsn = conf.Main.Database
		if opts.PageSize == 0 {
			opts.PageSize = importPageSize
		}
	case "mysql", "mysqldb", "pymysql": // as neostorage -a MySQL
		dsn = "mysql:" + conf.Main.Database
		opts.Engine = conf.Main.Engine
		opts.Wait = time.Duration(conf.Main.Wait * float64(time.Second))
		if conf.Main.Wait < 0 {
			opts.Wait = -1
		}
	default:
		return nil, fmt.Errorf("%s: [%s] adapter=%s: not supported as the Importer's destination by this implementation (only SQLite, MySQL)", conf.File, conf.Main.Section, conf.Main.Adapter)
	}
	im := &Importer{log: log, opts: opts, conf: conf, rate: rate, first: proto.InvalidTid, ptReady: make(chan struct{})}
	defer func() {
		if err != nil {
			im.closeSources()
			if im.Backend != nil {
				im.Backend.Close()
			}
		}
	}()
	for _, src := range conf.Sources {
		if conf.Main.Writeback && src.Storage.ReadOnly {
			return nil, fmt.Errorf("%s: [%s] writeback=true needs a writable source, [%s] is read-only", conf.File, conf.Main.Section, src.Name)
		}
		fs, err := filestorage.Open(src.Storage.Path, filestorage.Options{ReadOnly: !conf.Main.Writeback, Logger: log})
		if err != nil {
			return nil, fmt.Errorf("importer: source [%s]: %w", src.Name, err)
		}
		im.sources = append(im.sources, &source{name: src.Name, fs: fs})
		if t := fs.LastTid(); t > im.ltid {
			im.ltid = t
		}
	}
	if im.Backend, err = backend.Open(ctx, dsn, opts.Options); err != nil {
		return nil, fmt.Errorf("importer: destination [%s]: %w", conf.Main.Section, err)
	}
	if opts.Reset {
		return im, nil
	}
	var ok bool
	if im.target, ok = im.Backend.(backend.BulkImporter); !ok {
		return nil, fmt.Errorf("importer: destination %s %q: this backend cannot be the Importer's destination yet (it lacks backend.BulkImporter; SQLite and MySQL have it)", conf.Main.Adapter, dsn)
	}
	if err := im.setup(ctx); err != nil {
		return nil, err
	}
	for _, s := range im.sources {
		it := s.fs.Iterate(0)
		if t, err := it.NextTxn(); err == nil && (im.first == proto.InvalidTid || t.Tid < im.first) {
			im.first = t.Tid
		}
	}
	if err := im.loadNewOids(ctx); err != nil {
		return nil, err
	}
	v, ok, err := im.target.ImportConfig(ctx, tidKey)
	if err != nil {
		return nil, err
	}
	if ok {
		t, err := strconv.ParseUint(v, 16, 64)
		if err != nil {
			return nil, fmt.Errorf("importer: config %s=%q: %w", tidKey, v, err)
		}
		im.tid.Store(t)
	}
	im.done.Store(proto.Tid(im.tid.Load()) >= im.ltid)
	var runCtx context.Context
	runCtx, im.cancel = context.WithCancel(context.Background())
	if im.done.Load() {
		im.allImported()
	} else {
		if _, _, cells, err := im.Backend.PartitionTable(ctx); err == nil && len(cells) > 0 {
			im.ptReadyOnce.Do(func() { close(im.ptReady) })
		}
		im.wg.Add(1)
		go func() {
			defer im.wg.Done()
			im.runErr = im.run(runCtx)
		}()
	}
	if conf.Main.Writeback {
		im.wbKick = make(chan struct{}, 1)
		im.wg.Add(1)
		go func() {
			defer im.wg.Done()
			im.writebackLoop(runCtx)
		}()
		im.kickWriteback() // what a previous run left
	}
	return im, nil
}

// setup loads the renumbering saved at the first start, or computes and
// saves it.
func (im *Importer) setup(ctx context.Context) error {
	byName := map[string]*source{}
	for _, s := range im.sources {
		byName[s.name] = s
	}
	v, ok, err := im.target.ImportConfig(ctx, setupKey)
	if err != nil {
		return err
	}
	var saved savedSetup
	if ok {
		if err := json.Unmarshal([]byte(v), &saved); err != nil {
			return fmt.Errorf("importer: config %s: %w", setupKey, err)
		}
		im.log.Warn("importer: renumbering of the sources loaded from the destination; only their storage= definitions are taken from the configuration", "file", im.conf.File)
		if len(saved.Sources) != len(im.sources) {
			return fmt.Errorf("importer: the destination was set up for %d sources, %s has %d", len(saved.Sources), im.conf.File, len(im.sources))
		}
	} else {
		next := map[string]uint64{}
		shifts, loid, err := im.conf.Setup(func(src *importconf.Source) (proto.Oid, error) {
			n := uint64(byName[src.Name].fs.MaxOid()) + 1
			next[src.Name] = n
			return proto.Oid(n), nil
		})
		if err != nil {
			return err
		}
		saved.Loid, saved.Ltid = uint64(loid), uint64(im.ltid)
		for _, s := range im.sources {
			sh := shifts[s.name]
			ss := savedSource{Name: s.name, Offset: sh.Offset, Next: next[s.name], Mount: map[string]uint64{}}
			for k, v := range sh.Mount {
				ss.Mount[strconv.FormatUint(uint64(k), 10)] = uint64(v)
			}
			saved.Sources = append(saved.Sources, ss)
		}
		b, _ := json.Marshal(saved)
		if err := im.target.ImportTransactions(ctx, nil, nil, map[string]string{setupKey: string(b)}); err != nil {
			return fmt.Errorf("importer: save setup: %w", err)
		}
	}
	im.loid = proto.Oid(saved.Loid)
	if saved.Ltid != 0 && proto.Tid(saved.Ltid) < im.ltid {
		if !im.conf.Main.Writeback {
			im.log.Warn("importer: the sources have transactions after those of the setup; they are not imported unless the setup is cleared (incremental mode)",
				"setup_ltid", proto.Tid(saved.Ltid), "sources_ltid", im.ltid)
		}
		im.ltid = proto.Tid(saved.Ltid) // the rest was written back
	}
	for _, ss := range saved.Sources {
		s := byName[ss.Name]
		if s == nil {
			return fmt.Errorf("importer: the destination was set up with a source [%s] that %s does not have", ss.Name, im.conf.File)
		}
		s.shift = pickleref.Shift{Offset: ss.Offset, Mount: map[proto.Oid]proto.Oid{}}
		for k, v := range ss.Mount {
			o, err := strconv.ParseUint(k, 10, 64)
			if err != nil {
				return fmt.Errorf("importer: config %s: mount point %q: %w", setupKey, k, err)
			}
			s.shift.Mount[proto.Oid(o)] = proto.Oid(v)
		}
		s.identity = ss.Offset == 0 && len(s.shift.Mount) == 0
		s.rng = oidRange{proto.Oid(ss.Offset), proto.Oid(ss.Offset + ss.Next)}
	}
	sort.Slice(im.sources, func(i, j int) bool { return im.sources[i].rng.start < im.sources[j].rng.start })
	im.ranges = im.ranges[:0]
	for _, s := range im.sources {
		im.ranges = append(im.ranges, s.rng)
	}
	return nil
}

func (im *Importer) closeSources() {
	for _, s := range im.sources {
		if s.fs != nil {
			s.fs.Close()
		}
	}
}

func (im *Importer) allImported() {
	im.log.Warn("All data are imported. You should change your configuration to use the native backend and restart.")
}

// Imported returns the last source tid imported and whether the import is
// done.
func (im *Importer) Imported() (proto.Tid, bool) {
	return proto.Tid(im.tid.Load()), im.done.Load()
}

// ImportProgress implements [backend.ImportReporter]: "" once all is
// imported.
func (im *Importer) ImportProgress() string {
	if im.done.Load() {
		return ""
	}
	p := im.prog.Load()
	if p == nil {
		return "import not started: waiting for the partition table"
	}
	return p.report(time.Now())
}

// LastSourceTid is the last tid of the sources: commits get greater tids.
func (im *Importer) LastSourceTid() proto.Tid { return im.ltid }

// FirstSourceTid is the first tid of the sources, InvalidTid if they are
// empty (progress metrics).
func (im *Importer) FirstSourceTid() proto.Tid { return im.first }

// Close stops the import and closes the sources and the destination.
func (im *Importer) Close() error {
	im.closeOnce.Do(func() {
		if im.cancel != nil {
			im.cancel()
		}
		im.wg.Wait()
		if im.wbKick != nil {
			im.finalWriteback()
		}
		im.closeSources()
		im.closeErr = im.Backend.Close()
	})
	return im.closeErr
}

// Wait waits for the import to end (tests): nil when all is imported.
func (im *Importer) Wait(ctx context.Context) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for !im.done.Load() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// notImplemented is the error the node answers for what the Importer does
// not do while importing.
func notImplemented(what string) error {
	return &proto.Error{Code: proto.BACKEND_NOT_IMPLEMENTED, Message: what + " is not supported by the Importer backend while importing"}
}

// ChangePartitionTable implements [backend.Backend]: the import starts
// once the node has partitions.
func (im *Importer) ChangePartitionTable(ctx context.Context, ptid proto.PTid, numReplicas int, changes []backend.CellChange, reset bool) error {
	if err := im.Backend.ChangePartitionTable(ctx, ptid, numReplicas, changes, reset); err != nil {
		return err
	}
	im.kickWriteback()
	if _, _, cells, err := im.Backend.PartitionTable(ctx); err == nil && len(cells) > 0 {
		im.ptReadyOnce.Do(func() { close(im.ptReady) })
	}
	return nil
}

// source returns the source holding oid, or nil.
func (im *Importer) source(oid proto.Oid) *source {
	if i := sourceOf(im.ranges, oid); i >= 0 {
		return im.sources[i]
	}
	return nil
}

// Load implements [backend.Backend]: revisions up to the sources' last
// tid are read from the sources until the import is done.
func (im *Importer) Load(ctx context.Context, oid proto.Oid, at, before proto.Tid) (*backend.Object, error) {
	src := im.source(oid)
	w, srcBefore := loadPlan(im.done.Load(), src != nil, im.ltid, at, before)
	if w == fromBackend {
		return im.Backend.Load(ctx, oid, at, before)
	}
	if w == fromEither && im.newOids.may(oid) {
		o, err := im.Backend.Load(ctx, oid, at, before)
		if err == nil && o.Serial > im.ltid {
			return o, nil
		}
		if err != nil && !errors.Is(err, backend.ErrOidNotFound) && !errors.Is(err, backend.ErrOidDoesNotExist) {
			return nil, err
		}
	}
	o, srcNext, err := src.load(oid, srcBefore)
	if err != nil {
		return nil, err
	}
	if at != proto.InvalidTid && o.Serial != at {
		return nil, fmt.Errorf("load oid %s at %s from source %s: %w", oid, at, src.name, backend.ErrOidNotFound)
	}
	o.NextSerial, err = nextSerial(srcNext, im.ltid, func() (proto.Tid, error) { return im.firstNew(ctx, oid) })
	if err != nil {
		return nil, err
	}
	return o, nil
}

// firstNew returns the first revision of oid committed after the sources'
// last tid, InvalidTid if none. The destination holds the revisions up to
// ltid only as a prefix of the source's (the import commits in tid order),
// so the latest of them, if any, is followed by the first new one.
func (im *Importer) firstNew(ctx context.Context, oid proto.Oid) (proto.Tid, error) {
	if !im.newOids.may(oid) {
		return proto.InvalidTid, nil
	}
	o, err := im.Backend.Load(ctx, oid, proto.InvalidTid, im.ltid+1)
	if err == nil {
		return o.NextSerial, nil
	}
	if !errors.Is(err, backend.ErrOidNotFound) && !errors.Is(err, backend.ErrOidDoesNotExist) {
		return 0, err
	}
	// Nothing imported: walk back from the latest.
	first := proto.InvalidTid
	at, before := proto.InvalidTid, proto.InvalidTid
	for {
		o, err := im.Backend.Load(ctx, oid, at, before)
		switch {
		case errors.Is(err, backend.ErrOidNotFound), errors.Is(err, backend.ErrOidDoesNotExist):
			return first, nil
		case err != nil:
			return 0, err
		case o.Serial <= im.ltid:
			return first, nil
		}
		first, before = o.Serial, o.Serial
	}
}

// LastObjectTid implements [backend.Backend] (conflict detection).
func (im *Importer) LastObjectTid(ctx context.Context, oid proto.Oid) (proto.Tid, error) {
	src := im.source(oid)
	if im.done.Load() || src == nil || im.newOids.may(oid) {
		t, err := im.Backend.LastObjectTid(ctx, oid)
		if err != nil || im.done.Load() || src == nil || (t != proto.InvalidTid && t > im.ltid) {
			return t, err
		}
	}
	t := proto.InvalidTid
	o, _, err := src.load(oid, im.ltid+1)
	switch {
	case errors.Is(err, backend.ErrOidDoesNotExist), errors.Is(err, backend.ErrOidNotFound):
		return t, nil
	case err != nil:
		return 0, err
	}
	return o.Serial, nil
}

// History implements [backend.Backend]: not while importing.
func (im *Importer) History(ctx context.Context, oid proto.Oid, offset, length int) ([]backend.HistoryEntry, error) {
	if !im.done.Load() {
		return nil, notImplemented("history")
	}
	return im.Backend.History(ctx, oid, offset, length)
}

// UndoHistory implements [backend.Backend]: not while importing.
func (im *Importer) UndoHistory(ctx context.Context, oid proto.Oid, undoTid proto.Tid) (backend.UndoHistory, bool, error) {
	if !im.done.Load() {
		return backend.UndoHistory{}, false, notImplemented("undo")
	}
	return im.Backend.UndoHistory(ctx, oid, undoTid)
}

// Pack implements [backend.Backend]: not while importing.
func (im *Importer) Pack(ctx context.Context, partition uint32, packTid proto.Tid, oids []proto.Oid, minOid proto.Oid, limit int) (proto.Oid, error) {
	if !im.done.Load() {
		return 0, notImplemented("pack")
	}
	return im.Backend.Pack(ctx, partition, packTid, oids, minOid, limit)
}

// Truncate implements [backend.Backend]: not below the sources' last tid.
func (im *Importer) Truncate(ctx context.Context, tid proto.Tid, partitions []uint32) error {
	if tid < im.ltid {
		return fmt.Errorf("importer: truncate at %s: below the last tid %s of the sources", tid, im.ltid)
	}
	if im.wbKick != nil {
		return fmt.Errorf("importer: truncate at %s: not with writeback", tid)
	}
	return im.Backend.Truncate(ctx, tid, partitions)
}

// ObjectsFrom implements [backend.Backend]: this node is no replication
// source while importing.
func (im *Importer) ObjectsFrom(ctx context.Context, partition uint32, minTid, maxTid proto.Tid, minOid proto.Oid, length int) ([]backend.ObjectKey, error) {
	if !im.done.Load() {
		return nil, notImplemented("replication")
	}
	return im.Backend.ObjectsFrom(ctx, partition, minTid, maxTid, minOid, length)
}

// LastIDs implements [backend.Backend]: the sources' ids count, so that
// new commits get greater tids and oids.
func (im *Importer) LastIDs(ctx context.Context, partitions []uint32) (backend.LastIDs, error) {
	ids, err := im.Backend.LastIDs(ctx, partitions)
	if err != nil {
		return ids, err
	}
	if ids.LastTid == proto.InvalidTid || ids.LastTid < im.ltid {
		ids.LastTid = im.ltid
	}
	if ids.LastOid == proto.InvalidOid || ids.LastOid < im.loid {
		ids.LastOid = im.loid
	}
	if im.first != proto.InvalidTid && im.first < ids.FirstTid {
		ids.FirstTid = im.first
	}
	return ids, nil
}

// Transaction implements [backend.Backend]: a transaction not imported yet
// is read from the sources.
func (im *Importer) Transaction(ctx context.Context, tid proto.Tid) (*backend.TxnMeta, error) {
	if im.done.Load() || tid <= proto.Tid(im.tid.Load()) || tid > im.ltid {
		return im.Backend.Transaction(ctx, tid)
	}
	var m *backend.TxnMeta
	for _, s := range im.sourcesInConfOrder() {
		it := s.fs.Iterate(tid)
		t, err := it.NextTxn()
		if err != nil || t.Tid != tid {
			continue
		}
		if m == nil {
			m = &backend.TxnMeta{Tid: tid, TTid: tid, User: clone(t.User), Description: clone(t.Description),
				Ext: clone(t.Extension), Packed: t.Status == filestorage.StatusPacked}
		}
		for {
			r, err := it.NextData()
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("importer: transaction %s of source %s: %w", tid, s.name, err)
			}
			m.Oids = append(m.Oids, r.Oid+proto.Oid(s.shift.Offset))
		}
	}
	if m == nil {
		return im.Backend.Transaction(ctx, tid)
	}
	return m, nil
}

// sourcesInConfOrder returns the sources in the configuration's order,
// which decides whose metadata a merged transaction gets.
func (im *Importer) sourcesInConfOrder() []*source {
	byName := map[string]*source{}
	for _, s := range im.sources {
		byName[s.name] = s
	}
	var l []*source
	for _, c := range im.conf.Sources {
		l = append(l, byName[c.Name])
	}
	return l
}

// Stats implements [backend.StatsReporter] when the destination does.
func (im *Importer) Stats(ctx context.Context) (backend.Stats, error) {
	if sr, ok := im.Backend.(backend.StatsReporter); ok {
		return sr.Stats(ctx)
	}
	return backend.Stats{}, errors.New("importer: the destination reports no statistics")
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}

// TIDsFrom implements [backend.Backend]: while importing, the tids not
// imported yet come from the sources, so that a client's iterator lists
// every transaction.
func (im *Importer) TIDsFrom(ctx context.Context, partition uint32, minTid, maxTid proto.Tid, length int) ([]proto.Tid, error) {
	imported := proto.Tid(im.tid.Load())
	if im.done.Load() || maxTid <= imported || minTid > im.ltid {
		return im.Backend.TIDsFrom(ctx, partition, minTid, maxTid, length)
	}
	np, err := im.numPartitions(ctx)
	if err != nil {
		return nil, err
	}
	tids, err := im.Backend.TIDsFrom(ctx, partition, minTid, maxTid, length)
	if err != nil {
		return nil, err
	}
	// The destination has nothing in (imported, ltid]: the sources' tids
	// go between its imported ones and its new ones.
	var src []proto.Tid
	from, to := max(minTid, imported+1), min(maxTid, im.ltid)
	for _, s := range im.sources {
		it := s.fs.Iterate(from)
		n := 0
		for n < length {
			t, err := it.NextTxn()
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("importer: tids of source %s from %s: %w", s.name, from, err)
			}
			if t.Tid > to {
				break
			}
			if backend.Partition(t.Tid, np) == partition {
				src = append(src, t.Tid)
				n++
			}
		}
	}
	tids = append(tids, src...)
	slices.Sort(tids)
	tids = slices.Compact(tids)
	if len(tids) > length {
		tids = tids[:length]
	}
	return tids, nil
}

// numPartitions is the number of partitions of the node's table.
func (im *Importer) numPartitions(ctx context.Context) (uint32, error) {
	_, _, cells, err := im.Backend.PartitionTable(ctx)
	if err != nil {
		return 0, err
	}
	var np uint32
	for _, c := range cells {
		np = max(np, c.Partition+1)
	}
	if np == 0 {
		return 0, backend.ErrNoPartitionTable
	}
	return np, nil
}

// TIDs implements [backend.Backend] (AskTIDs, newest first): while
// importing, the tids not imported yet come from the sources, between
// the new commits and the imported ones.
func (im *Importer) TIDs(ctx context.Context, offset, length int, partitions []uint32) ([]proto.Tid, error) {
	imported := proto.Tid(im.tid.Load())
	if im.done.Load() || imported >= im.ltid || length <= 0 {
		return im.Backend.TIDs(ctx, offset, length, partitions)
	}
	np, err := im.numPartitions(ctx)
	if err != nil {
		return nil, err
	}
	want := map[uint32]bool{}
	for _, p := range partitions {
		want[p] = true
	}
	// The first offset+length of each part are enough for the merge.
	n := offset + length
	tids, err := im.Backend.TIDs(ctx, 0, n, partitions)
	if err != nil {
		return nil, err
	}
	for _, s := range im.sources {
		it := s.fs.IterateBackward()
		for k := 0; k < n; {
			t, err := it.NextTxn()
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("importer: tids of source %s: %w", s.name, err)
			}
			if t.Tid <= imported {
				break
			}
			if t.Tid <= im.ltid && want[backend.Partition(t.Tid, np)] {
				tids = append(tids, t.Tid)
				k++
			}
		}
	}
	slices.SortFunc(tids, func(a, b proto.Tid) int { return cmp.Compare(b, a) })
	tids = slices.Compact(tids)
	if offset >= len(tids) {
		return nil, nil
	}
	return tids[offset:min(len(tids), n)], nil
}
