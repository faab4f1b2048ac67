package storage

import (
	"context"
	"crypto/sha1"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/neogo/neo/neonet"
	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage/backend"
	_ "github.com/neogo/neo/storage/backend/sqlite"
)

// The storage process of TestSIGKILLAfterAcknowledgedCommits: the test
// binary re-executed with these variables set.
const (
	envChild  = "NEO_STORAGE_TEST_CHILD"
	envDB     = "NEO_STORAGE_TEST_DB"
	envMaster = "NEO_STORAGE_TEST_MASTER"
)

func TestMain(m *testing.M) {
	if os.Getenv(envChild) == "1" {
		os.Exit(runChildStorage())
	}
	os.Exit(m.Run())
}

func runChildStorage() int {
	ctx := context.Background()
	db, err := backend.Open(ctx, os.Getenv(envDB), backend.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		return 1
	}
	n, err := New(Config{
		Cluster: "durability", Masters: []string{os.Getenv(envMaster)}, Backend: db,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, nil)),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "new:", err)
		return 1
	}
	err = n.Run(ctx)
	fmt.Fprintln(os.Stderr, "run:", err)
	return 1
}

// fakeCluster plays the primary master and a client for one storage,
// packet by packet as the test scripts them; the storage is a real
// process, so that it can be killed with SIGKILL. It is a scripted fake
// peer, not a cluster: in-process clusters of real nodes come from
// internal/neotest.
type fakeCluster struct {
	t      *testing.T
	ctx    context.Context
	master *neonet.Link // to the storage, as master
	client *neonet.Link // to the storage, as client C1
}

const (
	testStorageNID = proto.NodeID(1)
	testClientNID  = proto.NodeID(-0x20<<24 + 1)
	testClientTS   = 1000.25
)

// startStorage runs the storage process, accepts its identification as the
// master, brings it to operation with a one-partition table and connects
// a client to it.
func startStorage(t *testing.T, ctx context.Context, dbPath string) (*exec.Cmd, *fakeCluster) {
	t.Helper()
	return startStorageCell(t, ctx, dbPath, proto.UP_TO_DATE)
}

// startStorageCell is startStorage with the storage's cell in state cs.
func startStorageCell(t *testing.T, ctx context.Context, dbPath string, cs proto.CellState) (*exec.Cmd, *fakeCluster) {
	t.Helper()
	ln, err := neonet.Listen(ctx, "tcp", "127.0.0.1:0", neonet.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envChild+"=1", envDB+"="+dbPath, envMaster+"="+ln.Addr().String())
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("storage process stderr:\n%s", stderr.String())
		}
	})
	link, err := ln.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fc := &fakeCluster{t: t, ctx: ctx, master: link}
	r, err := link.Recv(ctx)
	if err != nil {
		t.Fatal(err)
	}
	req, ok := r.Msg.(*proto.RequestIdentification)
	if !ok || req.NodeType != proto.STORAGE {
		t.Fatalf("first packet from the storage: %#v", r.Msg)
	}
	r.Reply(&proto.AcceptIdentification{NodeType: proto.MASTER, MyNID: proto.NewNodeID(proto.MASTER, 1), YourNID: testStorageNID})
	storageAddr := req.Addr
	link.Send(&proto.NotifyNodeInformation{Timestamp: testClientTS + 1, NodeList: []proto.NodeInfo{
		{Type: proto.STORAGE, Addr: storageAddr, NID: testStorageNID, State: proto.NODE_RUNNING, IDTimestamp: proto.Some(999.0)},
		{Type: proto.CLIENT, NID: testClientNID, State: proto.NODE_RUNNING, IDTimestamp: proto.Some(testClientTS)},
	}})
	var rec proto.AnswerRecovery
	fc.ask(&proto.AskRecovery{}, &rec)
	link.Send(&proto.SendPartitionTable{PTid: 1, Rows: [][]proto.CellInfo{{{NID: testStorageNID, State: cs}}}})
	var locked proto.AnswerLockedTransactions
	fc.ask(&proto.AskLockedTransactions{}, &locked)
	for _, l := range locked.TidDict {
		if l.Tid != proto.InvalidTid {
			link.Send(&proto.ValidateTransaction{TTid: l.TTid, Tid: l.Tid})
		}
	}
	var ids proto.AnswerLastIDs
	fc.ask(&proto.AskLastIDs{}, &ids)
	link.Send(&proto.StartOperation{})
	for {
		r, err := link.Recv(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := r.Msg.(*proto.NotifyReady); ok {
			break
		}
		// The master relays aborts only to ready storages.
		if _, ok := r.Msg.(*proto.AskUnfinishedTransactions); ok {
			t.Fatal("AskUnfinishedTransactions before NotifyReady")
		}
	}
	fc.client, err = neonet.Dial(ctx, "tcp", storageAddr.String(), neonet.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fc.client.Close() })
	var acc proto.AcceptIdentification
	if err := fc.client.Ask(ctx, &proto.RequestIdentification{NodeType: proto.CLIENT, NID: testClientNID,
		ClusterName: "durability", IDTimestamp: proto.Some(testClientTS), Extra: proto.Dict{}}, &acc); err != nil {
		t.Fatalf("client identification: %v", err)
	}
	return cmd, fc
}

func (fc *fakeCluster) ask(req, resp proto.Msg) {
	fc.t.Helper()
	if err := fc.master.Ask(fc.ctx, req, resp); err != nil {
		fc.t.Fatalf("%s: %v", proto.MsgName(req.NEOMsgCode()), err)
	}
}

// vote stores oid in a new transaction ttid and votes it.
func (fc *fakeCluster) vote(ttid proto.Tid, oid proto.Oid, data string) {
	t, ctx := fc.t, fc.ctx
	t.Helper()
	sum := sha1.Sum([]byte(data))
	var st proto.AnswerStoreObject
	if err := fc.client.Ask(ctx, &proto.AskStoreObject{Oid: oid, Serial: proto.ZeroTid, Checksum: sum[:],
		Data: []byte(data), DataSerial: proto.InvalidTid, TTid: ttid}, &st); err != nil || st.Conflict != proto.InvalidTid {
		t.Fatalf("store oid %v: %v conflict=%v", oid, err, st.Conflict)
	}
	var vt proto.AnswerStoreTransaction
	if err := fc.client.Ask(ctx, &proto.AskStoreTransaction{TTid: ttid, OidList: []proto.Oid{oid}}, &vt); err != nil {
		t.Fatalf("vote %v: %v", ttid, err)
	}
}

// commit votes oid in a new transaction and locks it with the master;
// unlock completes it.
func (fc *fakeCluster) commit(ttid, tid proto.Tid, oid proto.Oid, data string, unlock bool) {
	fc.t.Helper()
	fc.vote(ttid, oid, data)
	var lk proto.AnswerInformationLocked
	fc.ask(&proto.AskLockInformation{TTid: ttid, Tid: tid}, &lk)
	if unlock {
		fc.master.Send(&proto.NotifyUnlockInformation{TTid: ttid})
	}
}

// wantObject checks that oid's last revision is data at serial.
func (fc *fakeCluster) wantObject(oid proto.Oid, serial proto.Tid, data string) {
	fc.t.Helper()
	var o proto.AnswerObject
	if err := fc.client.Ask(fc.ctx, &proto.AskObject{Oid: oid, At: proto.InvalidTid, Before: proto.InvalidTid}, &o); err != nil {
		fc.t.Fatalf("load oid %d after SIGKILL: %v", oid, err)
	}
	if o.Serial != serial || string(o.Data) != data {
		fc.t.Fatalf("oid %d: serial %v data %q, want %v %q", oid, o.Serial, o.Data, serial, data)
	}
}

// crashTest skips in short mode, else returns the test's context and
// database path.
func crashTest(t *testing.T) (context.Context, string) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx, filepath.Join(t.TempDir(), "storage.sqlite")
}

// A commit is acknowledged to the client once every storage answered the
// lock: from then on it must survive a crash of the storage process
// (cluster.md §6.10), either committed or recoverable by verification.
func TestSIGKILLAfterAcknowledgedCommits(t *testing.T) {
	ctx, dbPath := crashTest(t)

	cmd, fc := startStorage(t, ctx, dbPath)
	const n = 20
	base := proto.Tid(0x03f47f9557777777)
	for i := 0; i < n; i++ {
		ttid := base + proto.Tid(2*i)
		fc.commit(ttid, ttid+1, proto.Oid(i), fmt.Sprintf("data %d", i), i < n-1)
	}
	// The last transaction is locked, not unlocked: its fate is decided
	// by verification. Make sure the earlier unlocks were processed (the
	// storage processes master packets in order) then kill.
	var lk proto.AnswerLockedTransactions
	fc.ask(&proto.AskLockedTransactions{}, &lk)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()

	// Restart: verification validates the locked transaction; every
	// acknowledged commit must then be readable.
	_, fc = startStorage(t, ctx, dbPath)
	for i := 0; i < n; i++ {
		fc.wantObject(proto.Oid(i), base+proto.Tid(2*i)+1, fmt.Sprintf("data %d", i))
	}
	var o proto.AnswerObject
	err := fc.client.Ask(ctx, &proto.AskObject{Oid: n, At: proto.InvalidTid, Before: proto.InvalidTid}, &o)
	if !errors.Is(err, proto.ErrOidDoesNotExist) {
		t.Fatalf("load of a never stored oid: %v", err)
	}
}

// Locks sent at once, before any answer, are written together (their
// writes overlap); each answered one survives a crash, and a packet after
// them sees them written.
func TestSIGKILLAfterConcurrentLocks(t *testing.T) {
	ctx, dbPath := crashTest(t)

	cmd, fc := startStorage(t, ctx, dbPath)
	const n = 8
	base := proto.Tid(0x03f47f9557777777)
	ttid := func(i int) proto.Tid { return base + proto.Tid(2*i) }
	for i := range n {
		fc.vote(ttid(i), proto.Oid(i), fmt.Sprintf("data %d", i))
	}
	calls := make([]*neonet.Call, n)
	for i := range n {
		c, err := fc.master.Start(&proto.AskLockInformation{TTid: ttid(i), Tid: ttid(i) + 1}, &proto.AnswerInformationLocked{})
		if err != nil {
			t.Fatal(err)
		}
		calls[i] = c
	}
	// Asked while locks may still be written: it waits for them.
	var lk proto.AnswerLockedTransactions
	fc.ask(&proto.AskLockedTransactions{}, &lk)
	for i, c := range calls {
		if err := c.Wait(ctx); err != nil {
			t.Fatalf("lock %v: %v", ttid(i), err)
		}
	}
	if len(lk.TidDict) != n {
		t.Errorf("locked transactions %v, want %d", lk.TidDict, n)
	}
	for _, l := range lk.TidDict {
		if l.Tid != l.TTid+1 {
			t.Errorf("transaction %v locked as %v, want %v", l.TTid, l.Tid, l.TTid+1)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()

	_, fc = startStorage(t, ctx, dbPath)
	for i := range n {
		fc.wantObject(proto.Oid(i), ttid(i)+1, fmt.Sprintf("data %d", i))
	}
}
