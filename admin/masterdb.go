package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"sync"

	"github.com/neogo/neo/proto"
)

// masterDB is the dynamic master list (-D, cluster.md §1.2.6): a JSON
// file holding the [host, port] pairs of the masters known so far, read at
// start to complete the configured masters and rewritten (atomically)
// whenever a master appears or goes away, so that a restarted node finds
// masters added since its configuration was written. Its methods accept a
// nil masterDB (no file). It is safe for concurrent use.
type masterDB struct {
	path string
	mu   sync.Mutex
	set  []proto.Addr
}

// openMasterDB reads the file at path, creating it empty if missing.
func openMasterDB(path string) (*masterDB, error) {
	db := &masterDB{path: path}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return db, db.save()
	}
	if err != nil {
		return nil, fmt.Errorf("dynamic master list: %w", err)
	}
	var pairs [][2]any
	if err := json.Unmarshal(b, &pairs); err != nil {
		return nil, fmt.Errorf("dynamic master list %s: %w", path, err)
	}
	for _, p := range pairs {
		host, ok1 := p[0].(string)
		port, ok2 := p[1].(float64)
		if !ok1 || !ok2 || port < 0 || port > 65535 {
			return nil, fmt.Errorf("dynamic master list %s: bad entry %v", path, p)
		}
		db.set = append(db.set, proto.Addr{Host: host, Port: uint16(port)})
	}
	return db, nil
}

// addrs returns the masters of the list.
func (db *masterDB) addrs() []proto.Addr {
	if db == nil {
		return nil
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	return slices.Clone(db.set)
}

// update adds and removes masters, saving the file if the set changed.
func (db *masterDB) update(add, remove []proto.Addr) error {
	if db == nil {
		return nil
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	changed := false
	for _, a := range add {
		if !a.IsZero() && !slices.Contains(db.set, a) {
			db.set, changed = append(db.set, a), true
		}
	}
	for _, a := range remove {
		if i := slices.Index(db.set, a); i >= 0 {
			db.set, changed = slices.Delete(db.set, i, i+1), true
		}
	}
	if !changed {
		return nil
	}
	return db.save()
}

func (db *masterDB) save() error {
	pairs := make([][2]any, len(db.set))
	for i, a := range db.set {
		pairs[i] = [2]any{a.Host, a.Port}
	}
	b, err := json.Marshal(pairs)
	if err != nil {
		return err
	}
	tmp := db.path + "#neo#"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("save dynamic master list: %w", err)
	}
	if err := os.Rename(tmp, db.path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("save dynamic master list: %w", err)
	}
	return nil
}
