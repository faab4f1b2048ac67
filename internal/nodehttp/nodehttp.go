// Package nodehttp is a node's HTTP side (issue 14): /healthz (the
// process is alive), /readyz (the node does its job: a master's cluster
// is RUNNING, a storage's cells are readable, an admin is connected to
// the primary master), /metrics in Prometheus' text format and, if
// asked, /debug/pprof/.
//
// A [Handler] holds one node's metrics registry, so that nodes sharing a
// process (internal/inproc, neosimple) keep their metrics apart. It is
// made before its node, since the node's links report their traffic to
// it ([Handler.NetObserver]); the node is then attached with
// [Handler.SetMaster], [Handler.SetStorage] or [Handler.SetAdmin], again
// after a restart, and is read at each scrape: the node packages keep no
// Prometheus dependency.
//
// # Metrics
//
// Every node, from its links (labels: packet or request type, neoppod's
// names such as AskObject, AskStoreObject, AskVoteTransaction,
// AskFinishTransaction, AskLockInformation):
//
//	neo_net_packets_sent_total, neo_net_packets_received_total
//	neo_net_sent_bytes_total, neo_net_received_bytes_total
//	neo_request_duration_seconds     histogram: receipt of a peer's request to its answer
//	neo_net_links, neo_net_links_opened_total
//	neo_net_peer_links{peer}         links open now by peer type, once identified
//	go_*, process_*                  Go runtime and process
//
// Master: neo_cluster_state{state} (1 for the current one),
// neo_master_primary, neo_cluster_nodes{type,state},
// neo_cluster_cells{state}, neo_cluster_partitions,
// neo_master_transactions, neo_last_commit_timestamp_seconds,
// neo_last_oid (its tables are read about once a second); in a backup
// cluster, neo_backup_upstream_last_commit_timestamp_seconds and
// neo_backup_lag_seconds.
//
// Storage: neo_storage_operational, neo_storage_cells{state},
// neo_storage_conflicts_total, neo_storage_deadlock_avoidances_total,
// neo_storage_cache_{hits,misses,evictions}_total,
// neo_storage_cache_entries, neo_storage_cache_bytes,
// neo_storage_database_bytes (SQLite: its files; MySQL: its tables, as
// the server estimates them); background work:
// neo_storage_replicating_partitions,
// neo_storage_replication_progress_ratio{partition} and
// neo_storage_replication_lag_seconds{partition} (while a partition is
// replicated), neo_storage_replicated_{transactions,objects}_total,
// neo_storage_check_progress_ratio{partition},
// neo_storage_checks_total{result}, neo_storage_pack_running,
// neo_storage_pack_progress_ratio, neo_storage_packed_partitions_total,
// and with the Importer backend neo_storage_import_progress_ratio and
// neo_storage_import_done. Progress ratios are shares of the commit-time
// span to go through (storage.Progress).
//
// Admin: neo_admin_primary_connected, and its view of the cluster:
// neo_cluster_state, neo_cluster_nodes, neo_cluster_cells,
// neo_cluster_partitions.
//
// Commit and load rates are rates of the request counters, e.g.
// rate(neo_request_duration_seconds_count{request="AskFinishTransaction"}[1m])
// on the master.
package nodehttp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/neogo/neo/neonet"
)

// Handler serves one node's endpoints. Its methods are safe for
// concurrent use; a nil *Handler attaches nothing and observes nothing.
type Handler struct {
	reg *prometheus.Registry
	net *netMetrics
	mux *http.ServeMux
	src atomic.Pointer[source]

	mu     sync.Mutex // serialises the inits of Shared
	shared sync.Map   // see Shared
}

// source is the node attached to a handler.
type source struct {
	// ready returns nil when the node is ready, else why not.
	ready   func() error
	collect func(ch chan<- prometheus.Metric)
}

// Options configure a Handler.
type Options struct {
	// Pprof serves net/http/pprof under /debug/pprof/ (--http-pprof).
	Pprof bool
}

// New returns a handler with its own registry, holding the Go runtime
// and process metrics, the links' metrics and those of the node attached
// later.
func New(opts Options) *Handler {
	h := &Handler{reg: prometheus.NewRegistry(), mux: http.NewServeMux()}
	h.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewBuildInfoCollector(), // go_build_info: the binary's module version
		nodeCollector{h},
	)
	h.net = newNetMetrics(h.reg)
	h.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	h.mux.HandleFunc("GET /readyz", h.readyz)
	h.mux.Handle("GET /metrics", promhttp.HandlerFor(h.reg, promhttp.HandlerOpts{
		ErrorHandling: promhttp.ContinueOnError,
		Registry:      h.reg, // promhttp_metric_handler_errors_total
	}))
	if opts.Pprof {
		h.mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		h.mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		h.mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		h.mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		h.mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	h.mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, fmt.Sprintf("404 %s: no such page (try /healthz, /readyz, /metrics)", r.URL.Path), http.StatusNotFound)
	})
	return h
}

// ServeHTTP serves the node's endpoints.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// Handle adds a route of the node's own (the admin's API), as
// [http.ServeMux.Handle]; its pattern must not conflict with the
// handler's: "GET /" is the handler's catch-all.
func (h *Handler) Handle(pattern string, handler http.Handler) { h.mux.Handle(pattern, handler) }

// Shared returns the value of key for h, made by init at the first call:
// what a node adds to its handler (routes, metrics) is added once, and
// serves the node attached after a restart too.
func (h *Handler) Shared(key any, init func() any) any {
	if v, ok := h.shared.Load(key); ok {
		return v
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if v, ok := h.shared.Load(key); ok {
		return v
	}
	v := init()
	h.shared.Store(key, v)
	return v
}

// Registry returns the node's registry, for metrics of its own.
func (h *Handler) Registry() *prometheus.Registry { return h.reg }

// NetObserver returns the observer to give the node's links
// ([neonet.Config.Observer]); nil for a nil handler.
func (h *Handler) NetObserver() neonet.Observer {
	if h == nil {
		return nil // not a typed nil: the links must see no observer
	}
	return h.net
}

func (h *Handler) attach(s *source) {
	if h != nil {
		h.src.Store(s)
	}
}

// ready returns nil when the attached node is ready, else why not.
func (h *Handler) ready() error {
	if s := h.src.Load(); s != nil {
		return s.ready()
	}
	return errors.New("node not started")
}

func (h *Handler) readyz(w http.ResponseWriter, r *http.Request) {
	if err := h.ready(); err != nil {
		http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "ok")
}

// nodeCollector collects the metrics of the attached node at each scrape.
// It is unchecked (describes nothing): what a node exports depends on its
// role, known only once it is attached.
type nodeCollector struct{ h *Handler }

func (c nodeCollector) Describe(chan<- *prometheus.Desc) {}

func (c nodeCollector) Collect(ch chan<- prometheus.Metric) {
	if s := c.h.src.Load(); s != nil {
		s.collect(ch)
	}
}

// Server is an HTTP server of a handler.
type Server struct {
	srv    *http.Server
	ln     net.Listener
	scheme string
	done   chan struct{}
}

// Listen listens on addr (HOST:PORT, port 0 for a free one) and serves h
// until [Server.Close] or ctx ends.
func Listen(ctx context.Context, addr string, h http.Handler, log *slog.Logger) (*Server, error) {
	return ListenTLS(ctx, addr, h, nil, log)
}

// ListenTLS is [Listen] serving HTTPS with tc when it is not nil (see
// [neonet.TLSConfig.HTTPServerConfig]).
func ListenTLS(ctx context.Context, addr string, h http.Handler, tc *tls.Config, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--http %s: %w", addr, err)
	}
	s := &Server{
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
			BaseContext:       func(net.Listener) context.Context { return ctx },
		},
		ln:     ln,
		scheme: "http",
		done:   make(chan struct{}),
	}
	if tc != nil {
		s.ln, s.scheme = tls.NewListener(ln, tc), "https"
	}
	log.Info("serving HTTP", "addr", ln.Addr().String(), "tls", tc != nil)
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("HTTP server stopped", "addr", addr, "err", err)
		}
	}()
	context.AfterFunc(ctx, func() { s.Close() })
	return s, nil
}

// Addr returns the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// URL returns the server's base URL, "http://HOST:PORT" or
// "https://HOST:PORT".
func (s *Server) URL() string { return s.scheme + "://" + s.ln.Addr().String() }

// Close stops the server at once and waits for it to end.
func (s *Server) Close() error {
	err := s.srv.Close()
	<-s.done
	return err
}
