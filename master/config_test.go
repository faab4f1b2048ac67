package master

import (
	"errors"
	"testing"

	"github.com/neogo/neo/proto"
)

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"no cluster", Config{}},
		{"negative replicas", Config{Cluster: "x", Replicas: -1}},
		{"negative partitions", Config{Cluster: "x", Partitions: -1}},
		{"same upstream", Config{Cluster: "x", UpstreamCluster: "x"}},
		{"non-master nid", Config{Cluster: "x", NID: proto.NewNodeID(proto.STORAGE, 1)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.cfg.Validate(); !errors.Is(err, ErrConfig) {
				t.Fatalf("Validate() = %v, want ErrConfig", err)
			}
		})
	}
	c := Config{Cluster: "x"}
	if err := c.Validate(); err != nil || c.Partitions != 100 || c.Bind.Port != 10000 {
		t.Fatalf("defaults: %+v %v", c, err)
	}
}
