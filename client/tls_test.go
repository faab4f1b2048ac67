package client_test

import (
	"context"
	"testing"
	"time"

	"github.com/neogo/neo/client"
	"github.com/neogo/neo/internal/neotest"
	"github.com/neogo/neo/internal/testca"
	"github.com/neogo/neo/neonet"
	"github.com/neogo/neo/proto"
)

// A client with a certificate of the cluster's CA commits and reads over
// TLS (master and storage links); one with a certificate of another CA,
// or without TLS, cannot connect.
func TestTLS(t *testing.T) {
	ca := testca.New(t, "neo test ca")
	c := neotest.Start(t, neotest.Options{Storages: 2, Replicas: 1, Partitions: 4, TLS: neotest.NodeTLS(t, ca, "cluster")})
	ctx := opContext(t)

	cl, err := client.Open(ctx, client.Config{Masters: c.Masters(), Cluster: c.Name(),
		TLS: neotest.NodeTLS(t, ca, "client"), Logger: neotest.Logger().With("node", "client")})
	if err != nil {
		t.Fatalf("open over TLS: %v", err)
	}
	defer cl.Close()
	oid, err := cl.NewOID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tid, err := neotest.Commit(ctx, cl, oid, proto.ZeroTid, []byte("secret"))
	if err != nil {
		t.Fatalf("commit over TLS: %v", err)
	}
	obj, err := cl.Load(ctx, oid, proto.InvalidTid)
	if err != nil || string(obj.Data) != "secret" || obj.Serial != tid {
		t.Errorf("Load over TLS = %q at %v, %v; want %q at %v", obj.Data, obj.Serial, err, "secret", tid)
	}

	for _, tc := range []struct {
		name string
		tls  *neonet.TLSConfig
	}{
		{"other CA", neotest.NodeTLS(t, testca.New(t, "other ca"), "intruder")},
		{"plain TCP", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Open retries until its context ends: bound it.
			ctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			bad, err := client.Open(ctx, client.Config{Masters: c.Masters(), Cluster: c.Name(), TLS: tc.tls})
			if err == nil {
				bad.Close()
				t.Fatal("Open succeeded")
			}
		})
	}
}
