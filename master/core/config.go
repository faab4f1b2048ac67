package core

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/neogo/neo/proto"
)

// Config configures a [Machine]. The zero values of optional fields give
// neoppod's defaults (cluster.md §9.2); [New] calls [Config.Validate] to
// apply them and check the rest.
type Config struct {
	// Cluster is the cluster name; every identification must carry it.
	Cluster string
	// Bind is the master's own listening address (neoppod default
	// 127.0.0.1:10000), as other nodes reach it.
	Bind proto.Addr
	// Masters are the masters of the cluster (the master itself may be
	// listed). While RECOVERING, the masters elect the primary among them;
	// the others play the secondary role (cluster.md §1.2.3).
	Masters []proto.Addr
	// SaveMasterList makes the machine emit [SaveMasters] when the set of
	// known masters changes (a dynamic master list is configured).
	SaveMasterList bool
	// Partitions is the number of partitions of a new database (default 100).
	Partitions int
	// Replicas is the number of replicas of a new database (default 0).
	Replicas int
	// Autostart, when > 0, creates a new cluster automatically once that
	// many storages are identified (only when no partition table exists).
	Autostart int
	// NID forces the master's own node id (testing); 0: allocate M1...
	NID proto.NodeID
	// Backup goes to BACKINGUP instead of RUNNING for an empty cluster.
	Backup bool
	// UpstreamCluster and UpstreamMasters name the cluster to back up
	// (cluster.md §8.9); the driver dials the masters ([DialUpstream]).
	UpstreamCluster string
	UpstreamMasters []proto.Addr
	// Logger receives the machine's log; nil discards it.
	Logger *slog.Logger
	// Now returns the current time; the driver passes its clock (the
	// machine never reads one by itself). It feeds the monotonic clock of
	// node timestamps, TID generation and the bound of held
	// identifications. Required.
	Now func() time.Time
}

// ErrConfig is matched by every configuration error; the message names the
// field.
var ErrConfig = errors.New("master: invalid configuration")

// Validate applies defaults and checks the configuration.
func (c *Config) Validate() error {
	if c.Cluster == "" {
		return fmt.Errorf("%w: Cluster: the cluster name is required", ErrConfig)
	}
	if c.Bind.IsZero() {
		c.Bind = proto.Addr{Host: "127.0.0.1", Port: 10000}
	}
	if c.Partitions == 0 {
		c.Partitions = 100
	}
	if c.Partitions < 0 {
		return fmt.Errorf("%w: Partitions: partitions must be more than zero", ErrConfig)
	}
	if c.Replicas < 0 {
		return fmt.Errorf("%w: Replicas: replicas must be a positive integer", ErrConfig)
	}
	if c.Autostart < 0 {
		return fmt.Errorf("%w: Autostart: must be >= 0", ErrConfig)
	}
	if c.NID != 0 {
		if t, ok := c.NID.Type(); !ok || t != proto.MASTER {
			return fmt.Errorf("%w: NID: %v is not a master node id", ErrConfig, c.NID)
		}
	}
	if c.UpstreamCluster != "" && c.UpstreamCluster == c.Cluster {
		return fmt.Errorf("%w: UpstreamCluster: upstream cluster name must be different from cluster name", ErrConfig)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		return fmt.Errorf("%w: Now: a clock is required", ErrConfig)
	}
	return nil
}
