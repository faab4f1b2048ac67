package master

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/neogo/neo/proto"
)

// The dynamic master list file (cluster.md §1.2.6) is neoppod's JSON: a
// list of [host, port] pairs. The driver reads and writes it; the core
// only says when the set of masters changed ([SaveMasters]).

// loadMasterList reads the master list at path, creating an empty one
// when the file does not exist (failing to create it is an error).
func loadMasterList(path string) ([]proto.Addr, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if err := saveMasterList(path, nil); err != nil {
			return nil, err
		}
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("master list: %w", err)
	}
	var pairs [][2]any
	if err := json.Unmarshal(data, &pairs); err != nil {
		return nil, fmt.Errorf("master list %s: %w", path, err)
	}
	out := make([]proto.Addr, 0, len(pairs))
	for _, p := range pairs {
		host, ok1 := p[0].(string)
		port, ok2 := p[1].(float64)
		if !ok1 || !ok2 || port < 0 || port > 65535 || port != float64(uint16(port)) {
			return nil, fmt.Errorf("master list %s: bad entry %v", path, p)
		}
		out = append(out, proto.Addr{Host: host, Port: uint16(port)})
	}
	return out, nil
}

// saveMasterList writes the list atomically: PATH#neo#, then rename.
func saveMasterList(path string, addrs []proto.Addr) error {
	pairs := make([][2]any, 0, len(addrs))
	for _, a := range addrs {
		pairs = append(pairs, [2]any{a.Host, a.Port})
	}
	data, err := json.Marshal(pairs)
	if err != nil {
		return fmt.Errorf("master list: %w", err)
	}
	tmp := path + "#neo#"
	if err := os.WriteFile(tmp, data, 0o666); err != nil {
		return fmt.Errorf("master list: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("master list: %w", err)
	}
	return nil
}
