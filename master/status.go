package master

import (
	"github.com/neogo/neo/master/core"
	"github.com/neogo/neo/proto"
)

// Status is a snapshot of a master node, for health checks and metrics.
type Status struct {
	NID proto.NodeID
	// ClusterState is the cluster state of this master's core.
	ClusterState proto.ClusterState
}

// Status returns the last snapshot published by Run, and false before Run
// made its first step or once it returned.
func (s *Server) Status() (Status, bool) {
	if st := s.status.Load(); st != nil {
		return *st, true
	}
	return Status{}, false
}

// publish makes the state of m, after a step, the one Status returns. It
// allocates only when something changed.
func (s *Server) publish(m *core.Machine) {
	st := Status{NID: m.NID(), ClusterState: m.ClusterState()}
	if old := s.status.Load(); old == nil || *old != st {
		s.status.Store(&st)
	}
}
