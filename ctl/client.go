package ctl

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"

	"github.com/neogo/neo/neonet"
	"github.com/neogo/neo/proto"
)

// Errors of the connection to the admin. Their texts are neoppod's, which
// neoctl prints after "ERROR: ".
var (
	// ErrNotConnected: the admin could not be reached (refused connection,
	// timeout). The cause is wrapped.
	ErrNotConnected = errors.New("not connected")
	// ErrConnectionClosed: the admin closed the connection before
	// answering, as it does after a PROTOCOL_ERROR or when TLS is used on
	// one side only. The cause is wrapped.
	ErrConnectionClosed = errors.New("Connection closed")
)

// DefaultAddr is the admin address neoctl uses without -a.
const DefaultAddr = "127.0.0.1:9999"

// Config says how to reach an admin node.
type Config struct {
	// Addr is the admin's "host:port".
	Addr string
	// TLS, if set, is the TLS setup of the cluster (--ca --cert --key).
	TLS *neonet.TLSConfig
	// Logger receives debug traces of the exchange; nil discards them.
	Logger *slog.Logger
	// Observer, if set, observes the link to the admin (neoctl -l
	// records its packets).
	Observer neonet.Observer
}

// Client is a connection to an admin node. It is safe for concurrent use,
// although neoctl asks one thing at a time.
type Client struct {
	link *neonet.Link
	log  *slog.Logger
}

// Dial connects to the admin at cfg.Addr. A failure matches
// [ErrNotConnected], or [ErrConnectionClosed] when the admin accepted the
// TCP connection but closed it during the handshakes.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("addr", cfg.Addr)
	link, err := neonet.Dial(ctx, "tcp", cfg.Addr, neonet.Config{Logger: log, TLS: cfg.TLS, Observer: cfg.Observer})
	if err != nil {
		log.Debug("connection to admin failed", "err", err)
		// As neoppod's neoctl: "not connected" until TCP and TLS are set
		// up, "Connection closed" if the admin closes during the NEO
		// handshake (e.g. a plain neoctl talking to a TLS admin).
		var op *net.OpError
		neoHandshake := errors.Is(err, neonet.ErrNotNEO) || errors.Is(err, neonet.ErrVersionMismatch)
		if errors.As(err, &op) && op.Op == "dial" || errors.Is(err, context.DeadlineExceeded) ||
			cfg.TLS != nil && !neoHandshake {
			return nil, fmt.Errorf("%w: admin %s: %w", ErrNotConnected, cfg.Addr, err)
		}
		return nil, fmt.Errorf("%w: admin %s: %w", ErrConnectionClosed, cfg.Addr, err)
	}
	log.Debug("connected to admin", "conn", link.String())
	return &Client{link: link, log: log}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.link.Close() }

// ask sends req and decodes its answer into resp.
func (c *Client) ask(ctx context.Context, req, resp proto.Msg) error {
	c.log.Debug("ask", "packet", fmt.Sprintf("%T", req))
	err := c.link.Ask(ctx, req, resp)
	if err != nil {
		c.log.Debug("answer", "packet", fmt.Sprintf("%T", req), "err", err)
		if errors.Is(err, neonet.ErrClosed) {
			return fmt.Errorf("%w: %w", ErrConnectionClosed, err)
		}
		return err
	}
	c.log.Debug("answer", "packet", fmt.Sprintf("%T", resp))
	return nil
}

// askAck sends a request answered by Error and returns the message of the
// ACK; any other error code is returned as a *proto.Error.
func (c *Client) askAck(ctx context.Context, req proto.Msg) (string, error) {
	var ack proto.Error
	if err := c.ask(ctx, req, &ack); err != nil {
		return "", err
	}
	if ack.Code != proto.ACK {
		return "", &ack
	}
	return ack.Message, nil
}

// askFor sends req and returns its answer, of type A.
func askFor[A any, PA interface {
	*A
	proto.Msg
}](ctx context.Context, c *Client, req proto.Msg) (*A, error) {
	a := PA(new(A))
	if err := c.ask(ctx, req, a); err != nil {
		return nil, err
	}
	return a, nil
}

// ClusterState returns the cluster state known by the admin (not valid if
// it does not know it yet).
func (c *Client) ClusterState(ctx context.Context) (proto.Opt[proto.ClusterState], error) {
	var a proto.AnswerClusterState
	err := c.ask(ctx, &proto.AskClusterState{}, &a)
	return a.State, err
}

// NodeList returns the nodes of type typ (all types if not valid) that the
// admin knows.
func (c *Client) NodeList(ctx context.Context, typ proto.Opt[proto.NodeType]) ([]proto.NodeInfo, error) {
	var a proto.AnswerNodeList
	err := c.ask(ctx, &proto.AskNodeList{NodeType: typ}, &a)
	return a.NodeList, err
}

// PartitionList returns the rows [min, max) of the partition table (max 0:
// to the end). nid is sent but ignored by the admin.
func (c *Client) PartitionList(ctx context.Context, min, max uint32, nid proto.NodeID) (*proto.AnswerPartitionList, error) {
	return askFor[proto.AnswerPartitionList](ctx, c, &proto.AskPartitionList{MinOffset: min, MaxOffset: max, NID: nid})
}

// Primary returns the id of the primary master the admin is connected to.
func (c *Client) Primary(ctx context.Context) (proto.NodeID, error) {
	var a proto.AnswerPrimary
	err := c.ask(ctx, &proto.AskPrimary{}, &a)
	return a.PrimaryNID, err
}

// Recovery returns the master's partition table id, backup tid and
// pending truncation tid.
func (c *Client) Recovery(ctx context.Context) (*proto.AnswerRecovery, error) {
	return askFor[proto.AnswerRecovery](ctx, c, &proto.AskRecovery{})
}

// LastIDs returns the master's last tid and oid.
func (c *Client) LastIDs(ctx context.Context) (*proto.AnswerLastIDs, error) {
	return askFor[proto.AnswerLastIDs](ctx, c, &proto.AskLastIDs{})
}

// LastTransaction returns the last committed tid.
func (c *Client) LastTransaction(ctx context.Context) (proto.Tid, error) {
	var a proto.AnswerLastTransaction
	err := c.ask(ctx, &proto.AskLastTransaction{}, &a)
	return a.Tid, err
}

// MonitorInformation returns the admin's health summary.
func (c *Client) MonitorInformation(ctx context.Context) (*proto.AnswerMonitorInformation, error) {
	return askFor[proto.AnswerMonitorInformation](ctx, c, &proto.AskMonitorInformation{})
}

// SetClusterState asks the master to switch the cluster to state.
func (c *Client) SetClusterState(ctx context.Context, state proto.ClusterState) (string, error) {
	return c.askAck(ctx, &proto.SetClusterState{State: state})
}

// SetNodeState asks the master to change the state of node nid: DOWN
// (kill) or UNKNOWN (drop).
func (c *Client) SetNodeState(ctx context.Context, nid proto.NodeID, state proto.NodeState) (string, error) {
	return c.askAck(ctx, &proto.SetNodeState{NID: nid, State: state})
}

// AddPendingNodes asks the master to make pending storages running.
func (c *Client) AddPendingNodes(ctx context.Context, nids []proto.NodeID) (string, error) {
	return c.askAck(ctx, &proto.AddPendingNodes{NIDList: nonNil(nids)})
}

// TweakPartitionTable asks the master to rebalance the partition table
// without using the storages nids (only simulated if dryRun).
func (c *Client) TweakPartitionTable(ctx context.Context, dryRun bool, nids []proto.NodeID) (*proto.AnswerTweakPartitionTable, error) {
	return askFor[proto.AnswerTweakPartitionTable](ctx, c, &proto.TweakPartitionTable{DryRun: dryRun, NIDList: nonNil(nids)})
}

// SetNumReplicas asks the master to change the number of replicas.
func (c *Client) SetNumReplicas(ctx context.Context, n uint32) (string, error) {
	return c.askAck(ctx, &proto.SetNumReplicas{NumReplicas: n})
}

// CheckReplicas asks the master to compare the replicas of partitions
// between min and max (InvalidTid: up to the last tid).
func (c *Client) CheckReplicas(ctx context.Context, parts []proto.CheckSource, min, max proto.Tid) (string, error) {
	return c.askAck(ctx, &proto.CheckReplicas{PartitionDict: nonNil(parts), MinTid: min, MaxTid: max})
}

// Repair asks storages nids to prune orphan data (only count if dryRun).
func (c *Client) Repair(ctx context.Context, nids []proto.NodeID, dryRun bool) (string, error) {
	return c.askAck(ctx, &proto.Repair{NIDList: nonNil(nids), DryRun: dryRun})
}

// Truncate asks the master to truncate the database after tid.
func (c *Client) Truncate(ctx context.Context, tid proto.Tid) (string, error) {
	return c.askAck(ctx, &proto.Truncate{Tid: tid})
}

// FlushLog asks every node to flush its logs. It returns once the
// notification is handed to the kernel.
func (c *Client) FlushLog(ctx context.Context) error {
	c.log.Debug("send", "packet", "FlushLog")
	if err := c.link.Send(&proto.FlushLog{}); err != nil {
		return fmt.Errorf("%w: %w", ErrConnectionClosed, err)
	}
	return nil
}

// nonNil makes an empty list encode as an empty array, never nil.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
