package adminhttp

import (
	"context"
	"net/http"

	"github.com/neogo/neo/admin"
	"github.com/neogo/neo/proto"
)

// Backups returns the state of the backup clusters the admin monitors
// ([admin.Node.Backups]).
type Backups func(ctx context.Context) []admin.BackupStatus

// setBackups makes f the source of GET /api/v1/backups.
func (a *API) setBackups(f Backups) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.backups = f
}

// BackupJSON is one backup cluster in GET /api/v1/backups.
type BackupJSON struct {
	Name      string `json:"name"`
	Connected bool   `json:"connected"`
	// State is its cluster state, "" while unknown.
	State    string `json:"state"`
	Severity string `json:"severity"`
	// Summary is its line of neoctl's print summary.
	Summary string `json:"summary"`
	// BackupTid (and its time) while BACKINGUP, LastTid once RUNNING,
	// when its admin told them.
	BackupTid     *string `json:"backup_tid,omitempty"`
	BackupTidTime *string `json:"backup_tid_time,omitempty"`
	LastTid       *string `json:"last_tid,omitempty"`
	// LagSeconds is how late it is behind this cluster, when known;
	// Lagging: more than the admin's --monitor-maxlag.
	LagSeconds *float64 `json:"lag_seconds,omitempty"`
	Lagging    bool     `json:"lagging"`
}

func (a *API) getBackups(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	f := a.backups
	a.mu.Unlock()
	out := struct {
		Backups []BackupJSON `json:"backups"`
	}{Backups: []BackupJSON{}}
	if f != nil {
		ctx, cancel := context.WithTimeout(r.Context(), askTimeout)
		defer cancel()
		for _, b := range f(ctx) {
			out.Backups = append(out.Backups, backupJSON(b))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func backupJSON(b admin.BackupStatus) BackupJSON {
	j := BackupJSON{Name: b.Name, Connected: b.Connected, Severity: b.Severity.String(), Summary: b.Summary, Lagging: b.Lagging}
	if s, ok := b.ClusterState.Get(); ok {
		j.State = s.String()
	}
	if t, ok := b.BackupTid.Get(); ok {
		j.BackupTid, j.BackupTidTime = ptr(hex(uint64(t))), ptr(proto.FormatTidTime(t))
	}
	if t, ok := b.LastTid.Get(); ok {
		j.LastTid = ptr(hex(uint64(t)))
	}
	if l, ok := b.Lag.Get(); ok {
		j.LagSeconds = ptr(l)
	}
	return j
}
