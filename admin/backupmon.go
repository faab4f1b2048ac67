package admin

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/neogo/neo/proto"
)

// backupMon is what the upstream admin knows of one monitored backup
// cluster (cluster.md §8.9, §9.4): the health its admin reports
// (NotifyMonitorInformation) and the tids asked to it for a summary.
type backupMon struct {
	Name string
	Monitor
	// Lagging is whether the backup was late at the last summary that
	// could compare it with this cluster; it is kept across summaries
	// that cannot (this cluster or the backup not operational).
	Lagging bool
}

// mergeInfo applies the keys of a NotifyMonitorInformation to m and
// reports whether something changed. Unknown keys are ignored, as newer
// admins may report more.
func (m *Monitor) mergeInfo(info proto.Dict) (changed bool, err error) {
	for _, it := range info {
		switch it.Key {
		case "cluster_state":
			var s proto.Opt[proto.ClusterState]
			switch v := it.Value.(type) {
			case nil:
			case proto.ClusterState:
				s = proto.Some(v)
			default:
				return changed, fmt.Errorf("cluster_state: %T %v is not a cluster state", it.Value, it.Value)
			}
			if s != m.ClusterState {
				m.ClusterState, changed = s, true
				// Tids asked in another state say nothing of this one.
				m.LastTid, m.BackupTid = proto.Opt[proto.Tid]{}, proto.Opt[proto.Tid]{}
			}
		case "down":
			d, err := infoInt(it.Value)
			if err != nil {
				return changed, fmt.Errorf("down: %w", err)
			}
			if d != m.Down {
				m.Down, changed = d, true
			}
		case "pt_summary":
			var pt map[proto.CellState]int
			switch v := it.Value.(type) {
			case nil:
			case proto.Map:
				pt = make(map[proto.CellState]int, len(v))
				for _, c := range v {
					s, ok := c.Key.(proto.CellState)
					if !ok {
						return changed, fmt.Errorf("pt_summary: key %T %v is not a cell state", c.Key, c.Key)
					}
					n, err := infoInt(c.Value)
					if err != nil {
						return changed, fmt.Errorf("pt_summary[%v]: %w", s, err)
					}
					pt[s] = n
				}
			default:
				return changed, fmt.Errorf("pt_summary: %T %v is not a map", it.Value, it.Value)
			}
			if !samePT(pt, m.PTSummary) {
				m.PTSummary, changed = pt, true
			}
		}
	}
	return changed, nil
}

func infoInt(v proto.Value) (int, error) {
	switch v := v.(type) {
	case int64:
		return int(v), nil
	case uint64:
		return int(v), nil
	}
	return 0, fmt.Errorf("%T %v is not an integer", v, v)
}

func samePT(a, b map[proto.CellState]int) bool {
	if (a == nil) != (b == nil) || len(a) != len(b) {
		return false
	}
	for s, n := range a {
		if m, ok := b[s]; !ok || m != n {
			return false
		}
	}
	return true
}

// shownTid is the tid a summary shows: the backup tid when BACKINGUP,
// else the last tid; none when not operational or not known.
func (m Monitor) shownTid() (proto.Tid, bool) {
	if !m.Operational() {
		return 0, false
	}
	if m.ClusterState.V == proto.BACKINGUP {
		return m.BackupTid.Get()
	}
	return m.LastTid.Get()
}

// summary is the backup's indented summary line and its severity, given
// the tid this cluster's summary shows (upstream, if any) and the most a
// backup may lag (seconds). A BACKINGUP backup compared with upstream
// shows `; lag=<seconds>` instead of its tid's date, `lag=ε` when it is
// behind by less than a microsecond; it updates b.Lagging.
func (b *backupMon) summary(upstream proto.Opt[proto.Tid], maxLag float64) (string, Severity) {
	s := b.stateSummary()
	if tid, ok := b.shownTid(); ok {
		s = b.Monitor.stateSummary() + "; ltid=" + fmt.Sprintf("%016x", uint64(tid))
		if sec, eps, ok := b.lag(upstream); ok {
			var lag string
			if !eps {
				lag, b.Lagging = proto.FormatFloat(sec), maxLag < sec
			} else {
				lag, b.Lagging = "ε", maxLag <= 0
			}
			s += "; lag=" + lag
		} else {
			s += " (" + proto.FormatTidTime(tid) + ")"
		}
	}
	sev := SeverityOK
	switch {
	case b.Down > 0 || !b.Operational():
		sev = SeverityProblem
	case len(b.PTSummary) != 1 || b.PTSummary[proto.UP_TO_DATE] == 0,
		b.ClusterState.V != proto.BACKINGUP, b.Lagging:
		sev = SeverityWarning
	}
	return "    " + s, sev
}

// lag is how late the backup is behind the upstream tid, in seconds,
// when it is BACKINGUP and both tids are known: the difference of their
// times in microseconds; eps when it is behind by less than that.
func (b *backupMon) lag(upstream proto.Opt[proto.Tid]) (sec float64, eps, ok bool) {
	tid, tidOk := b.shownTid()
	up, upOk := upstream.Get()
	if !tidOk || !upOk || b.ClusterState.V != proto.BACKINGUP {
		return 0, false, false
	}
	us := tidMicros(up) - tidMicros(tid)
	return float64(us) / 1e6, us == 0 && tid < up, true
}

// BackupStatus is what the admin knows of a backup cluster it monitors
// (--monitor-backup): what its admin reports, and its lag behind this
// cluster.
type BackupStatus struct {
	Name string
	// Connected: the backup's admin reports to this one; else nothing
	// else is known.
	Connected bool
	Monitor
	// Summary is its line of print summary (without the indentation),
	// Severity its health.
	Summary  string
	Severity Severity
	// Lag is how late it is behind this cluster's last tid, in seconds,
	// when it is BACKINGUP and both tids are known.
	Lag     proto.Opt[float64]
	Lagging bool
}

// Backups returns the state of the monitored backup clusters, once the
// tids it shows were asked (to this cluster's master and to the
// backups' admins), in the order of Config.Monitor.Backups; nil if none
// is monitored.
func (n *Node) Backups(ctx context.Context) []BackupStatus {
	if len(n.cfg.Monitor.Backups) == 0 {
		return nil
	}
	n.mu.Lock()
	master, mon := n.mu.master, n.mu.v.monitor()
	n.mu.Unlock()
	if master != nil {
		mon, _ = n.askMasterTids(ctx, master, mon)
	}
	qctx, cancel := context.WithTimeout(ctx, monitorTimeout)
	n.askBackupTids(qctx)
	cancel()
	var upstream proto.Opt[proto.Tid]
	if t, ok := mon.shownTid(); ok && master != nil {
		upstream = proto.Some(t)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]BackupStatus, len(n.mu.backups))
	for i, b := range n.mu.backups {
		line, sev := b.mon.summary(upstream, n.cfg.Monitor.MaxLag)
		st := BackupStatus{Name: b.mon.Name, Connected: b.link != nil, Monitor: b.mon.Monitor,
			Summary: strings.TrimSpace(line), Severity: sev, Lagging: b.mon.Lagging}
		if sec, _, ok := b.mon.lag(upstream); ok {
			st.Lag = proto.Some(sec)
		}
		out[i] = st
	}
	return out
}

// tidMicros is the tid's time in microseconds, truncated as neoppod's
// datetimeFromTID.
func tidMicros(tid proto.Tid) int64 {
	return proto.TidTime(tid).Truncate(time.Microsecond).UnixMicro()
}
