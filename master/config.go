package master

import (
	"log/slog"
	"time"

	"github.com/neogo/neo/master/core"
	"github.com/neogo/neo/neonet"
	"github.com/neogo/neo/proto"
)

// Config configures a master node. The zero values of optional fields give
// neoppod's defaults (cluster.md §9.2); call [Config.Validate] (done by
// [NewServer]) to apply them and check the rest.
type Config struct {
	// Cluster is the cluster name; every identification must carry it.
	Cluster string
	// Bind is the listening address (neoppod default 127.0.0.1:10000).
	// Port 0 picks a free port; the real address is then used as our own.
	Bind proto.Addr
	// Masters are the masters of the cluster (the master itself may be
	// listed). While RECOVERING, the masters elect the primary among them;
	// the others play the secondary role (cluster.md §1.2.3).
	Masters []proto.Addr
	// DynamicMasterList, when set, is the path of a JSON file listing the
	// known masters as [host, port] pairs (cluster.md §1.2.6): loaded at
	// start (created empty when missing) and rewritten atomically when
	// the set of masters changes.
	DynamicMasterList string
	// Partitions is the number of partitions of a new database (default 100).
	Partitions int
	// Replicas is the number of replicas of a new database (default 0).
	Replicas int
	// Autostart, when > 0, creates a new cluster automatically once that
	// many storages are identified (only when no partition table exists).
	Autostart int
	// NID forces the master's own node id (testing); 0: allocate M1...
	NID proto.NodeID
	// UpstreamCluster and UpstreamMasters name the cluster to back up
	// (cluster.md §8.9).
	UpstreamCluster string
	UpstreamMasters []proto.Addr
	// Backup goes to BACKINGUP instead of RUNNING for an empty cluster.
	Backup bool
	// TLS, when not nil, is used for every link (mutual TLS, §10.3).
	TLS *neonet.TLSConfig
	// Logger receives the node's log; nil discards it.
	Logger *slog.Logger
	// NetObserver, if set, is told of the traffic of every link (metrics,
	// the log file's packets).
	NetObserver neonet.Observer
	// FlushLog, if set, writes out the buffered records of the node's log
	// file: called on FlushLog (neoctl flush_log), on its own goroutine.
	FlushLog func()
	// Now returns the current time; nil means time.Now. It feeds the
	// master's monotonic clock (node timestamps) and TID generation.
	Now func() time.Time
}

// ErrConfig is matched by every configuration error; the message names the
// field.
var ErrConfig = core.ErrConfig

// Validate applies defaults and checks the configuration.
func (c *Config) Validate() error {
	if c.Now == nil {
		c.Now = time.Now
	}
	cc := c.core()
	if err := cc.Validate(); err != nil {
		return err
	}
	c.Bind, c.Partitions, c.Logger = cc.Bind, cc.Partitions, cc.Logger
	return nil
}

// core returns the configuration of the master's state machine.
func (c *Config) core() core.Config {
	return core.Config{
		Cluster:         c.Cluster,
		Bind:            c.Bind,
		Masters:         c.Masters,
		SaveMasterList:  c.DynamicMasterList != "",
		Partitions:      c.Partitions,
		Replicas:        c.Replicas,
		Autostart:       c.Autostart,
		NID:             c.NID,
		Backup:          c.Backup,
		UpstreamCluster: c.UpstreamCluster,
		UpstreamMasters: c.UpstreamMasters,
		Logger:          c.Logger,
		Now:             c.Now,
	}
}
