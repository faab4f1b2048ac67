// Command neostorage runs a NEO storage node, with neoppod's options
// (cluster.md §9.1, §9.3):
//
//	neostorage -c CLUSTER -m "MASTER..." -b BIND -a SQLite -d PATH [-l LOGFILE]
//
// The SQLite adapter is the default (neoppod defaults to MySQL); MySQL
// (and neoppod's aliases MySQLdb, PyMySQL) takes neoppod's
// [user[:password]@]database[socket] with --engine and --wait. Some
// options are ours: --cache-size (default 64M, 0 disables) sizes the
// in-memory cache of object revisions (package objcache) in front of the
// database, and the Go runtime's soft memory limit (--cache-size + 80 MiB,
// unless GOMEMLIMIT is set); --http HOST:PORT (and --http-pprof) serves /healthz, /readyz
// and /metrics (package internal/nodehttp). Options may come from an INI
// file (-f FILE -s SECTION, section "storage" by default); the command
// line wins.
//
// With -a Importer, -d is neoppod's importer.conf: the node serves ZODB
// FileStorages at once while importing them into its SQLite database
// (package importer).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"

	"github.com/neogo/neo/internal/bytesize"
	"github.com/neogo/neo/internal/cliopt"
	"github.com/neogo/neo/internal/cpuprof"
	"github.com/neogo/neo/neonet"
	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage"
	"github.com/neogo/neo/storage/backend"
	"github.com/neogo/neo/storage/backend/importer"
	"github.com/neogo/neo/storage/backend/objcache"
	_ "github.com/neogo/neo/storage/backend/sqlite"
)

// memHeadroom is the Go memory a storage needs beside its object cache:
// the log's RAM buffer (16 MiB), the links' buffers, the requests in
// flight, the runtime's own.
const memHeadroom = 80 << 20

// memoryLimit returns the soft limit of the Go runtime's memory of a
// storage whose object cache holds cacheSize bytes, unless the
// environment's GOMEMLIMIT (env) sets one. The cache is most of what a
// storage keeps, and with Go's default GOGC=100 alone the heap grows to
// twice what is live: with --cache-size 64M, 180 MiB resident after the
// cache filled. The limit only makes the GC run more often when the heap
// nears it (at most half the CPU, past it): nothing fails.
func memoryLimit(cacheSize int64, env string) (int64, bool) {
	if env != "" {
		return 0, false
	}
	return cacheSize + memHeadroom, true
}

func main() {
	stopProfile := cpuprof.Start(os.Stderr)
	status := run(os.Args[1:], os.Stdout, os.Stderr)
	stopProfile()
	os.Exit(status)
}

func parser() *cliopt.Parser {
	return &cliopt.Parser{
		Prog:        "neostorage",
		Description: "NEO storage node (Go implementation)",
		Options: append([]*cliopt.Option{
			{Short: "f", Long: "file", Kind: cliopt.Path, Help: "specify a configuration file"},
			{Short: "s", Long: "section", Kind: cliopt.String, Default: "storage", HasDefault: true, Help: "specify a configuration section"},
			{Short: "l", Long: "logfile", Kind: cliopt.Path, Help: "log debugging information to specified file"},
			{Long: "ca", Kind: cliopt.Path, Help: "certificate authority in PEM format"},
			{Long: "cert", Kind: cliopt.Path, Help: "certificate in PEM format"},
			{Long: "key", Kind: cliopt.Path, Help: "private key in PEM format"},
			{Short: "c", Long: "cluster", Kind: cliopt.String, Required: true, Help: "the cluster name"},
			{Short: "m", Long: "masters", Kind: cliopt.String, Default: "127.0.0.1:10000", HasDefault: true, Help: "space-separated list of master node addresses"},
			{Short: "b", Long: "bind", Kind: cliopt.String, Default: "127.0.0.1", HasDefault: true, Help: "the local address to bind to"},
			{Short: "D", Long: "dynamic-master-list", Kind: cliopt.Path, Help: "path of the file containing dynamic master node list"},
			{Short: "a", Long: "adapter", Kind: cliopt.String, Default: "SQLite", HasDefault: true, Help: "database adapter to use",
				Choices: []string{"Importer", "MySQL", "MySQLdb", "PyMySQL", "SQLite"}}, // neoppod's: backendDSN refuses what is not implemented
			{Short: "d", Long: "database", Kind: cliopt.String, Required: true, Help: "database connections string (SQLite: a path or file:PATH?k=v)"},
			{Short: "e", Long: "engine", Kind: cliopt.String, Help: "database engine at creation (MySQL only: InnoDB, RocksDB)"},
			{Short: "w", Long: "wait", Kind: cliopt.Int, Default: "0", HasDefault: true, Help: "seconds to wait for backend to be available, -1 forever (ignored for SQLite)"},
			{Long: "cache-size", Kind: cliopt.String, Default: "64M", HasDefault: true,
				Help: "bytes of object revisions to cache in memory (K, M, G suffixes: KiB, MiB, GiB; 0 disables; not in neoppod)"},
			{Long: "dedup", Kind: cliopt.Bool, Help: "enable deduplication of data when the database is created"},
			{Long: "disable-drop-partitions", Kind: cliopt.Bool, Help: "do not delete data of discarded cells"},
			{Long: "disable-pack", Kind: cliopt.Bool, Help: "do not process any pack order"},
			{Short: "i", Long: "nid", Kind: cliopt.String, Help: "specify an NID to use for this process (testing purpose)"},
			{Long: "new-nid", Kind: cliopt.Bool, Help: "the database is a raw copy of another node's: request a new NID and cells on the copied node's partitions, then exit; restarted without it, the node replicates only what changed since the copy"},
			{Long: "reset", Kind: cliopt.Bool, Help: "remove an existing database if any, and exit"},
		}, cliopt.HTTPOptions()...),
	}
}

func run(args []string, stdout, stderr io.Writer) int {
	p := parser()
	opts, status, ok := p.ParseCommandLine(args, stdout, stderr)
	if !ok {
		return status
	}
	if err := runStorage(p, opts, stderr); err != nil {
		return p.Fail(stderr, err)
	}
	return 0
}

// runStorage runs the node; an error is also logged, so that the log file
// says why the node exited.
func runStorage(p *cliopt.Parser, opts map[string]string, stderr io.Writer) (err error) {
	nl, err := p.Logger(opts["logfile"], stderr)
	if err != nil {
		return fmt.Errorf("open log file: %w", err)
	}
	defer nl.Close()
	defer nl.PreMortem(nil)
	nl.File.SetCluster(opts["cluster"])
	log := nl.Logger
	if _, ok := opts["logfile"]; ok {
		defer func() {
			if err != nil {
				log.Error("exit", "cluster", opts["cluster"], "err", err)
			}
		}()
	}

	dsn, err := backendDSN(opts["adapter"], opts["database"])
	if err != nil {
		return err
	}
	_, newNID := opts["new_nid"]
	var tlsCfg *neonet.TLSConfig
	ca, hasCA := opts["ca"]
	cert, hasCert := opts["cert"]
	key, hasKey := opts["key"]
	switch {
	case hasCA && hasCert && hasKey:
		var err error
		if tlsCfg, err = neonet.LoadTLS(ca, cert, key); err != nil {
			return err
		}
	case hasCA || hasCert || hasKey:
		return errors.New("To enable encryption, 3 files must be provided: the CA certificate, and the certificate of this node with its private key")
	}

	masters, err := parseAddrList(opts["masters"], 10000)
	if err != nil {
		return fmt.Errorf("--masters: %w", err)
	}
	if path, ok := opts["dynamic_master_list"]; ok {
		more, err := readMasterList(path)
		if err != nil {
			return err
		}
		for _, m := range more {
			if !contains(masters, m) {
				masters = append(masters, m)
			}
		}
	}
	bind, err := parseAddr(opts["bind"], 0)
	if err != nil {
		return fmt.Errorf("--bind: %w", err)
	}
	cacheSize, err := bytesize.Parse(opts["cache_size"])
	if err != nil {
		return fmt.Errorf("--cache-size: %w", err)
	}
	if limit, ok := memoryLimit(cacheSize, os.Getenv("GOMEMLIMIT")); ok {
		defer debug.SetMemoryLimit(debug.SetMemoryLimit(limit))
	}
	var nid proto.NodeID
	if s, ok := opts["nid"]; ok {
		if nid, err = parseNID(s); err != nil {
			return fmt.Errorf("--nid: %w", err)
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	_, reset := opts["reset"]
	_, dedup := opts["dedup"]
	wait, err := parseWait(opts["wait"])
	if err != nil {
		return err
	}
	bopts := backend.Options{Logger: log, Reset: reset, Dedup: dedup, Engine: opts["engine"], Wait: wait}
	var db backend.Backend
	if strings.EqualFold(opts["adapter"], "Importer") {
		// -d is the importer.conf (cluster.md §8.10).
		db, err = importer.Open(ctx, opts["database"], importer.Options{Options: bopts})
	} else {
		db, err = backend.Open(ctx, dsn, bopts)
	}
	if err != nil {
		if errors.Is(err, backend.ErrLocked) {
			return errors.New("database is locked")
		}
		return err
	}
	if reset {
		return db.Close()
	}
	db = objcache.Wrap(db, cacheSize)
	defer func() {
		if st, ok := objcache.StatsOf(db); ok {
			log.Info("object cache", "size", cacheSize, "hits", st.Hits, "misses", st.Misses, "evictions", st.Evictions)
		}
	}()
	_, disablePack := opts["disable_pack"]
	_, disableDrop := opts["disable_drop_partitions"]
	h := cliopt.NewHTTP(opts)
	node, err := storage.New(storage.Config{
		Cluster:               opts["cluster"],
		Masters:               masters,
		Bind:                  bind,
		Backend:               db,
		NID:                   nid,
		TLS:                   tlsCfg,
		DisablePack:           disablePack,
		DisableDropPartitions: disableDrop,
		Logger:                log.With("cluster", opts["cluster"]),
		NetObserver:           nl.Observer(h.NetObserver()),
		FlushLog:              nl.Flush,
		NewNID:                newNID,
	})
	if err != nil {
		db.Close()
		return err
	}
	h.SetStorage(node, db, sqliteFiles(opts["adapter"], opts["database"])...)
	stopHTTP, err := cliopt.StartHTTP(ctx, opts, h, log)
	if err != nil {
		db.Close()
		return err
	}
	defer stopHTTP()
	defer nl.HandleSignals(ctx, node.LogState)()
	err = node.Run(ctx)
	switch {
	case errors.Is(err, storage.ErrOtherCluster):
		return fmt.Errorf("--database %s: %w", opts["database"], err)
	case errors.Is(err, storage.ErrShutdown), errors.Is(err, storage.ErrErased):
		log.Info("exit", "reason", err)
		return nil
	case ctx.Err() != nil:
		log.Info("exit on signal")
		return nil
	}
	nl.PreMortem(err)
	return err
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// parseAddr accepts host:port, [ipv6]:port, or a bare host (default port).
// A host name is resolved once; the numeric form is used from then on.
func parseAddr(s string, defPort int) (string, error) {
	s = strings.TrimSpace(s)
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		host, port = strings.Trim(s, "[]"), strconv.Itoa(defPort)
	}
	if host == "" {
		return "", fmt.Errorf("invalid address %q", s)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return "", fmt.Errorf("invalid port in %q", s)
	}
	if net.ParseIP(host) == nil {
		ips, err := net.LookupHost(host)
		if err != nil || len(ips) == 0 {
			return "", fmt.Errorf("resolve %q: %v", host, err)
		}
		host = ips[0]
	}
	return net.JoinHostPort(host, port), nil
}

func parseAddrList(s string, defPort int) ([]string, error) {
	var r []string
	for _, f := range strings.Fields(s) {
		a, err := parseAddr(f, defPort)
		if err != nil {
			return nil, err
		}
		r = append(r, a)
	}
	if len(r) == 0 {
		return nil, errors.New("no address")
	}
	return r, nil
}

// readMasterList loads a dynamic master list: a JSON array of [host, port].
// A missing file is created empty.
func readMasterList(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		if err := os.WriteFile(path, []byte("[]"), 0o644); err != nil {
			return nil, fmt.Errorf("create dynamic master list: %w", err)
		}
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read dynamic master list: %w", err)
	}
	var l [][2]any
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("dynamic master list %s: %w", path, err)
	}
	var r []string
	for _, e := range l {
		host, _ := e[0].(string)
		port, _ := e[1].(float64)
		r = append(r, net.JoinHostPort(host, strconv.Itoa(int(port))))
	}
	return r, nil
}

// parseNID accepts the printed form (S1) or a plain integer.
func parseNID(s string) (proto.NodeID, error) {
	if i, err := strconv.ParseInt(s, 10, 32); err == nil {
		return proto.NodeID(i), nil
	}
	return proto.ParseNodeID(s)
}
