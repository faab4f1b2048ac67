// Package adminhttp is the admin's JSON API and web dashboard (issue 14,
// item 2), served on the admin's --http address beside its health and
// metrics (package nodehttp).
//
// The API asks what neoctl asks, through a neoctl connection of its own
// to the admin ([ctl.Client]): its answers are neoctl's, and the admin
// node needs no second code path. Reads:
//
//	GET  /api/v1/cluster            {"state": "RUNNING", "primary": "M1"}
//	GET  /api/v1/nodes[?type=T]     {"nodes": [{"type", "nid", "addr", "state", "id_timestamp"}]}
//	GET  /api/v1/pt[?min=&max=&node=]  {"ptid", "replicas", "rows": [{"offset", "cells": [{"nid", "state"}]}]}
//	                                (rows [min, max), max 0: to the end; cells of node only)
//	GET  /api/v1/ids                {"last_oid", "last_tid", "last_tid_time", "backup_tid", "last_ptid"}
//	GET  /api/v1/summary            {"summary", "warnings", "problems"}
//	GET  /api/v1/progress           {"nodes": {NAME: {"replicating", "checking", "pack", "import",
//	                                "backup_lag_seconds"}}, "commits", "loads", "at", "peers"}
//	                                (from the nodes' metrics, when the admin has them: [API.SetPeers])
//	GET  /api/v1/backups            {"backups": [{"name", "connected", "state", "severity", "summary",
//	                                "backup_tid", "backup_tid_time", "last_tid", "lag_seconds", "lagging"}]}
//	                                (the backup clusters the admin monitors, --monitor-backup)
//
// Writes (POST, JSON body), refused with 403 unless the request comes
// from loopback or, on HTTPS (a cluster with TLS), with a client
// certificate of the cluster's CA:
//
//	POST /api/v1/start                               set cluster VERIFYING
//	POST /api/v1/cluster   {"state": "STOPPING"}     set cluster
//	POST /api/v1/add       {"nodes": ["S1"]}         add (none: every pending storage)
//	POST /api/v1/tweak     {"nodes": [], "dry_run": true}
//	POST /api/v1/nodes/{nid}/kill, /api/v1/nodes/{nid}/drop
//	POST /api/v1/truncate  {"tid": "tid:0x..."}      (neoctl's tid syntax)
//	POST /api/v1/check     {"partitions": [0, 3], "source": "S1", "min_tid": "...", "max_tid": "..."}
//	                       (no partitions: all; no source: upstream; tids optional)
//
// Reads, and the dashboard, are open to whoever reaches the --http
// address, as neoctl's port is: bind it to a trusted interface.
//
// Answers are JSON; a failure is {"error": "..."} with a 4xx status for a
// bad request (malformed JSON, unknown state or node, partitions out of
// range, refused by the master) and 502 when the admin cannot be asked.
// The dashboard at / reads the API every 2 s: cluster state, nodes,
// partition table, progress bars (replication from the partition table,
// and from the nodes' metrics when it has them: replication per
// partition, check, pack, import), commit and load rates, backup lag,
// the monitored backup clusters (state, backup tid, lag);
// the write actions are forms, each confirmed in the page before it is
// posted.
package adminhttp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/neogo/neo/admin"
	"github.com/neogo/neo/ctl"
	"github.com/neogo/neo/internal/nodehttp"
	"github.com/neogo/neo/neonet"
	"github.com/neogo/neo/proto"
)

// askTimeout bounds one question to the admin.
const askTimeout = 10 * time.Second

// maxBody bounds a request body.
const maxBody = 1 << 20

// API serves the JSON API and the dashboard.
type API struct {
	dial func(ctx context.Context) (*ctl.Client, error)
	log  *slog.Logger

	mu      sync.Mutex
	cl      *ctl.Client // nil until dialed, and again after a failure
	peers   Peers       // see SetPeers
	backups Backups     // see Attach; nil: none known
}

// New returns the API of the admin that dial connects to (as neoctl).
func New(dial func(ctx context.Context) (*ctl.Client, error), log *slog.Logger) *API {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &API{dial: dial, log: log}
}

// Mux is where the API registers its routes (a nodehttp.Handler, an
// http.ServeMux).
type Mux interface {
	Handle(pattern string, h http.Handler)
}

// Register adds the API's and the dashboard's routes to mux.
func (a *API) Register(mux Mux) {
	get := func(p string, f func(*http.Request, *ctl.Client) (any, error)) {
		mux.Handle("GET /api/v1/"+p, a.serve(f, false))
	}
	post := func(p string, f func(*http.Request, *ctl.Client) (any, error)) {
		mux.Handle("POST /api/v1/"+p, a.serve(f, true))
	}
	get("cluster", a.getCluster)
	get("nodes", a.getNodes)
	get("pt", a.getPT)
	get("ids", a.getIDs)
	get("summary", a.getSummary)
	post("start", func(r *http.Request, c *ctl.Client) (any, error) {
		return message(c.SetClusterState(r.Context(), proto.VERIFYING))
	})
	post("cluster", a.setCluster)
	post("add", a.add)
	post("tweak", a.tweak)
	post("nodes/{nid}/kill", func(r *http.Request, c *ctl.Client) (any, error) { return a.setNode(r, c, proto.DOWN) })
	post("nodes/{nid}/drop", func(r *http.Request, c *ctl.Client) (any, error) { return a.setNode(r, c, proto.UNKNOWN) })
	post("truncate", a.truncate)
	post("check", a.check)
	mux.Handle("GET /api/v1/progress", http.HandlerFunc(a.getProgress))
	mux.Handle("GET /api/v1/backups", http.HandlerFunc(a.getBackups))
	notFound := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Errorf("%s %s: no such API", r.Method, r.URL.Path))
	})
	mux.Handle("GET /api/", notFound)
	mux.Handle("POST /api/", notFound)
	mux.Handle("GET /{$}", http.HandlerFunc(serveDashboard))
}

// badRequest is an error of the request itself: 400.
type badRequest struct{ error }

// serve runs f with a neoctl connection and writes its answer as JSON.
func (a *API) serve(f func(*http.Request, *ctl.Client) (any, error), write bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if write && !loopback(r.RemoteAddr) && !clusterCert(r) {
			writeError(w, http.StatusForbidden, fmt.Errorf("%s %s: writes are only accepted from loopback or with a certificate of the cluster, not from %s", r.Method, r.URL.Path, r.RemoteAddr))
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), askTimeout)
		defer cancel()
		r = r.WithContext(ctx)
		var v any
		var err error
		for attempt := 0; ; attempt++ {
			var c *ctl.Client
			if c, err = a.client(ctx); err != nil {
				writeError(w, http.StatusBadGateway, err)
				return
			}
			v, err = f(r, c)
			var pe *proto.Error
			switch {
			case errors.As(err, &pe) && pe.Code != proto.PROTOCOL_ERROR && pe.Code != proto.NOT_READY:
			case err != nil && !errors.As(err, new(badRequest)):
				// The admin aborts neoctl's link after a protocol error
				// or NOT_READY, and the link may have broken: a new one
				// for the next request.
				a.drop(c)
				if errors.Is(err, neonet.ErrClosed) && attempt == 0 && !write {
					continue // a read on a link found closed: once more
				}
			}
			break
		}
		var br badRequest
		var pe *proto.Error
		switch {
		case err == nil:
			writeJSON(w, http.StatusOK, v)
		case errors.As(err, &br):
			writeError(w, http.StatusBadRequest, err)
		case errors.As(err, &pe):
			writeError(w, protoStatus(pe.Code), err)
		default:
			writeError(w, http.StatusBadGateway, err)
		}
	})
}

// protoStatus maps the error code of an admin's or master's answer to
// an HTTP status.
func protoStatus(c proto.ErrorCode) int {
	switch c {
	case proto.NOT_READY:
		return http.StatusServiceUnavailable
	case proto.DENIED:
		return http.StatusConflict
	case proto.OID_NOT_FOUND, proto.TID_NOT_FOUND, proto.OID_DOES_NOT_EXIST:
		return http.StatusNotFound
	}
	return http.StatusBadRequest
}

// client returns the neoctl connection, dialing it if needed.
func (a *API) client(ctx context.Context) (*ctl.Client, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cl != nil {
		return a.cl, nil
	}
	if a.dial == nil {
		return nil, errors.New("no admin node")
	}
	c, err := a.dial(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect to the admin: %w", err)
	}
	a.cl = c
	return c, nil
}

// drop forgets c after a failure, if it is still the connection.
func (a *API) drop(c *ctl.Client) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cl == c {
		c.Close()
		a.cl = nil
	}
}

// Close closes the neoctl connection.
func (a *API) Close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cl != nil {
		a.cl.Close()
		a.cl = nil
	}
}

// clusterCert reports whether r came with a client certificate, which
// the server's TLS setup (neonet.TLSConfig.HTTPServerConfig) accepts only
// when it chains to the cluster's CA.
func clusterCert(r *http.Request) bool {
	return r.TLS != nil && len(r.TLS.PeerCertificates) > 0
}

func loopback(remote string) bool {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, map[string]string{"error": err.Error()})
}

// decode reads the JSON body of r into v: unknown fields and trailing
// data are errors.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest{fmt.Errorf("request body: %w", err)}
	}
	if dec.More() {
		return badRequest{errors.New("request body: data after the JSON value")}
	}
	return nil
}

// message is the answer of the writes: the master's message, as neoctl
// prints it.
func message(msg string, err error) (any, error) {
	if err != nil {
		return nil, err
	}
	return map[string]string{"message": msg}, nil
}

// node is a node in the API.
type node struct {
	Type        string   `json:"type"`
	NID         string   `json:"nid"`
	Addr        string   `json:"addr,omitempty"`
	State       string   `json:"state"`
	IDTimestamp *float64 `json:"id_timestamp"`
}

func (a *API) getCluster(r *http.Request, c *ctl.Client) (any, error) {
	st, err := c.ClusterState(r.Context())
	if err != nil {
		return nil, err
	}
	v := struct {
		State   *string `json:"state"`
		Primary *string `json:"primary"`
	}{}
	if s, ok := st.Get(); ok {
		v.State = ptr(s.String())
	}
	if p, err := c.Primary(r.Context()); err == nil && p != 0 {
		v.Primary = ptr(ctl.FormatNID(p))
	}
	return v, nil
}

func (a *API) getNodes(r *http.Request, c *ctl.Client) (any, error) {
	var typ proto.Opt[proto.NodeType]
	if s := r.URL.Query().Get("type"); s != "" {
		t, ok := parseEnum(s, proto.NodeType.Valid)
		if !ok {
			return nil, badRequest{fmt.Errorf("type %q: not a node type (MASTER, STORAGE, CLIENT, ADMIN)", s)}
		}
		typ = proto.Some(t)
	}
	list, err := c.NodeList(r.Context(), typ)
	if err != nil {
		return nil, err
	}
	nodes := []node{}
	for _, n := range list {
		e := node{Type: n.Type.String(), NID: ctl.FormatNID(n.NID), State: n.State.String()}
		if n.Addr != (proto.Addr{}) {
			e.Addr = n.Addr.String()
		}
		if ts, ok := n.IDTimestamp.Get(); ok {
			e.IDTimestamp = &ts
		}
		nodes = append(nodes, e)
	}
	return map[string]any{"nodes": nodes}, nil
}

func (a *API) getPT(r *http.Request, c *ctl.Client) (any, error) {
	q := r.URL.Query()
	var bounds [2]uint32
	for i, k := range []string{"min", "max"} {
		if s := q.Get(k); s != "" {
			n, err := strconv.ParseUint(s, 10, 32)
			if err != nil {
				return nil, badRequest{fmt.Errorf("%s %q: not a partition number", k, s)}
			}
			bounds[i] = uint32(n)
		}
	}
	var nid proto.NodeID
	if s := q.Get("node"); s != "" {
		var err error
		if nid, err = proto.ParseNodeID(s); err != nil {
			return nil, badRequest{fmt.Errorf("node %q: %w", s, err)}
		}
	}
	// The whole table, cut here: the admin answers rows out of range
	// with an error sent apart from the answer, as neoppod does, which
	// leaves the request unanswered.
	pl, err := c.PartitionList(r.Context(), 0, 0, 0)
	if err != nil {
		return nil, err
	}
	np := uint32(len(pl.RowList))
	if bounds[1] == 0 {
		bounds[1] = np
	}
	if bounds[0] < bounds[1] && bounds[1] > np || bounds[0] > bounds[1] {
		return nil, badRequest{fmt.Errorf("partitions [%d, %d): out of range, the table has %d", bounds[0], bounds[1], np)}
	}
	type cell struct {
		NID   string `json:"nid"`
		State string `json:"state"`
	}
	type row struct {
		Offset uint32 `json:"offset"`
		Cells  []cell `json:"cells"`
	}
	rows := []row{}
	for i, cells := range pl.RowList[bounds[0]:bounds[1]] {
		rw := row{Offset: bounds[0] + uint32(i), Cells: []cell{}}
		for _, c := range cells {
			if nid == 0 || c.NID == nid {
				rw.Cells = append(rw.Cells, cell{ctl.FormatNID(c.NID), c.State.String()})
			}
		}
		rows = append(rows, rw)
	}
	return map[string]any{"ptid": pl.PTid, "replicas": pl.NumReplicas, "rows": rows}, nil
}

func (a *API) getIDs(r *http.Request, c *ctl.Client) (any, error) {
	rec, err := c.Recovery(r.Context())
	if err != nil {
		return nil, err
	}
	v := struct {
		LastOid     *string `json:"last_oid,omitempty"`
		LastTid     string  `json:"last_tid"`
		LastTidTime string  `json:"last_tid_time"`
		BackupTid   *string `json:"backup_tid,omitempty"`
		LastPTid    uint64  `json:"last_ptid"`
	}{LastPTid: uint64(rec.PTid)}
	var last proto.Tid
	if rec.BackupTid != proto.InvalidTid {
		if last, err = c.LastTransaction(r.Context()); err != nil {
			return nil, err
		}
		v.BackupTid = ptr(hex(uint64(rec.BackupTid)))
	} else {
		ids, err := c.LastIDs(r.Context())
		if err != nil {
			return nil, err
		}
		v.LastOid, last = ptr(hex(uint64(ids.LastOid))), ids.LastTid
	}
	v.LastTid, v.LastTidTime = hex(uint64(last)), proto.FormatTidTime(last)
	return v, nil
}

func (a *API) getSummary(r *http.Request, c *ctl.Client) (any, error) {
	mi, err := c.MonitorInformation(r.Context())
	if err != nil {
		return nil, err
	}
	strs := func(l []proto.Opt[string]) []string {
		out := []string{}
		for _, s := range l {
			if v, ok := s.Get(); ok {
				out = append(out, v)
			}
		}
		return out
	}
	return map[string]any{"summary": mi.Summary, "warnings": strs(mi.Warnings), "problems": strs(mi.Problems)}, nil
}

func (a *API) setCluster(r *http.Request, c *ctl.Client) (any, error) {
	var body struct {
		State string `json:"state"`
	}
	if err := decode(r, &body); err != nil {
		return nil, err
	}
	st, ok := parseEnum(body.State, proto.ClusterState.Valid)
	if !ok {
		return nil, badRequest{fmt.Errorf("state %q: not a cluster state", body.State)}
	}
	return message(c.SetClusterState(r.Context(), st))
}

// parseNIDs parses node ids ("S1"), each checked.
func parseNIDs(l []string) ([]proto.NodeID, error) {
	out := []proto.NodeID{}
	for _, s := range l {
		nid, err := proto.ParseNodeID(s)
		if err != nil {
			return nil, badRequest{fmt.Errorf("node %q: %w", s, err)}
		}
		out = append(out, nid)
	}
	return out, nil
}

func (a *API) add(r *http.Request, c *ctl.Client) (any, error) {
	var body struct {
		Nodes []string `json:"nodes"`
	}
	if err := decode(r, &body); err != nil {
		return nil, err
	}
	nids, err := parseNIDs(body.Nodes)
	if err != nil {
		return nil, err
	}
	return message(c.AddPendingNodes(r.Context(), nids))
}

func (a *API) tweak(r *http.Request, c *ctl.Client) (any, error) {
	var body struct {
		Nodes  []string `json:"nodes"`
		DryRun bool     `json:"dry_run"`
	}
	if err := decode(r, &body); err != nil {
		return nil, err
	}
	nids, err := parseNIDs(body.Nodes)
	if err != nil {
		return nil, err
	}
	return message(c.Tweak(r.Context(), body.DryRun, nids))
}

func (a *API) setNode(r *http.Request, c *ctl.Client, state proto.NodeState) (any, error) {
	s := r.PathValue("nid")
	nid, err := proto.ParseNodeID(s)
	if err != nil {
		return nil, badRequest{fmt.Errorf("node %q: %w", s, err)}
	}
	return message(c.SetNodeState(r.Context(), nid, state))
}

func (a *API) truncate(r *http.Request, c *ctl.Client) (any, error) {
	var body struct {
		Tid string `json:"tid"`
	}
	if err := decode(r, &body); err != nil {
		return nil, err
	}
	tid, err := proto.ParseTid(body.Tid)
	if err != nil {
		return nil, badRequest{err}
	}
	return message(c.Truncate(r.Context(), tid))
}

func (a *API) check(r *http.Request, c *ctl.Client) (any, error) {
	var body struct {
		Partitions []uint32 `json:"partitions"`
		Source     string   `json:"source"`
		MinTid     string   `json:"min_tid"`
		MaxTid     string   `json:"max_tid"`
	}
	if err := decode(r, &body); err != nil {
		return nil, err
	}
	var src proto.NodeID
	if body.Source != "" {
		var err error
		if src, err = proto.ParseNodeID(body.Source); err != nil {
			return nil, badRequest{fmt.Errorf("source %q: %w", body.Source, err)}
		}
	}
	min, max := proto.ZeroTid, proto.InvalidTid
	for _, b := range []struct {
		name string
		s    string
		tid  *proto.Tid
	}{{"min_tid", body.MinTid, &min}, {"max_tid", body.MaxTid, &max}} {
		if b.s != "" {
			t, err := proto.ParseTid(b.s)
			if err != nil {
				return nil, badRequest{fmt.Errorf("%s: %w", b.name, err)}
			}
			*b.tid = t
		}
	}
	pl, err := c.PartitionList(r.Context(), 0, 0, 0)
	if err != nil {
		return nil, err
	}
	np := uint32(len(pl.RowList))
	parts := body.Partitions
	if len(parts) == 0 {
		for p := range np {
			parts = append(parts, p)
		}
	}
	var sources []proto.CheckSource
	for _, p := range parts {
		if p >= np {
			return nil, badRequest{fmt.Errorf("partition %d: out of range, the table has %d", p, np)}
		}
		sources = append(sources, proto.CheckSource{Partition: p, Source: src})
	}
	return message(c.CheckReplicas(r.Context(), sources, min, max))
}

func parseEnum[E ~uint8](s string, valid func(E) bool) (E, bool) {
	for v := E(0); valid(v); v++ {
		if strings.EqualFold(s, fmt.Sprint(v)) {
			return v, true
		}
	}
	return 0, false
}

func hex(v uint64) string { return fmt.Sprintf("0x%016x", v) }

func ptr[T any](v T) *T { return &v }

// Attach serves the API and the dashboard of admin node n on h (its
// --http side), which it reaches as neoctl does, with tls if the cluster
// uses TLS, once n listens. Attached again after a restart of the node,
// the routes stay and serve the new node. A nil h does nothing.
func Attach(h *nodehttp.Handler, n *admin.Node, tls *neonet.TLSConfig, log *slog.Logger) {
	if h == nil {
		return
	}
	apiOf(h, log).setDial(func(ctx context.Context) (*ctl.Client, error) {
		select {
		case <-n.Ready():
		case <-ctx.Done():
			return nil, fmt.Errorf("admin not listening yet: %w", ctx.Err())
		}
		return ctl.Dial(ctx, ctl.Config{Addr: n.Addr().String(), TLS: tls, Logger: log})
	})
	apiOf(h, log).setBackups(n.Backups)
}

type apiKey struct{}

// apiOf returns the API served on h, registering it at the first call.
func apiOf(h *nodehttp.Handler, log *slog.Logger) *API {
	return h.Shared(apiKey{}, func() any {
		a := New(nil, log)
		a.Register(h)
		return a
	}).(*API)
}

// AttachPeers makes peers the source of the progress served on h (see
// [API.SetPeers]). A nil h does nothing.
func AttachPeers(h *nodehttp.Handler, peers Peers) {
	if h != nil {
		apiOf(h, nil).SetPeers(peers)
	}
}

// setDial makes dial the way to the admin from now on.
func (a *API) setDial(dial func(ctx context.Context) (*ctl.Client, error)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.dial = dial
	if a.cl != nil {
		a.cl.Close()
		a.cl = nil
	}
}
