package storage

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/neogo/neo/neonet"
	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage/backend"
)

// A backup database is served read-only, cut at its backup tid
// (neoppod's ClientReadOnlyOperationHandler).
func TestBackupClientIsReadOnly(t *testing.T) {
	ctx := t.Context()
	db, err := backend.Open(ctx, filepath.Join(t.TempDir(), "db.sqlite"), backend.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	meta, err := db.Meta(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const backupTid = proto.Tid(100)
	meta.BackupTid = backupTid
	if err := db.SetMeta(ctx, meta); err != nil {
		t.Fatal(err)
	}
	n, err := New(Config{Cluster: "c", Masters: []string{"127.0.0.1:1"}, Backend: db})
	if err != nil {
		t.Fatal(err)
	}
	c := &clientConn{n: n, backup: true}
	req := func(m proto.Msg) *neonet.Request { return &neonet.Request{Msg: m} }

	for _, m := range []proto.Msg{&proto.AskStoreObject{}, &proto.AskStoreTransaction{}, &proto.AskVoteTransaction{},
		&proto.AskCheckCurrentSerial{}, &proto.AskRelockObject{}, &proto.AskFinalTID{}} {
		if done, err := c.readOnly(ctx, req(m)); !done || !errors.Is(err, proto.ErrReadOnlyAccess) {
			t.Errorf("%s: done=%v err=%v, want READ_ONLY_ACCESS", proto.MsgName(m.NEOMsgCode()), done, err)
		}
	}
	if _, err := c.readOnly(ctx, req(&proto.AskTransactionInformation{Tid: backupTid + 1})); !errors.Is(err, proto.ErrTidNotFound) {
		t.Errorf("transaction after the backup tid: %v", err)
	}
	for _, tc := range []struct {
		in, want proto.AskObject
	}{
		{proto.AskObject{At: proto.InvalidTid, Before: proto.InvalidTid}, proto.AskObject{At: proto.InvalidTid, Before: backupTid + 1}},
		{proto.AskObject{At: proto.InvalidTid, Before: 500}, proto.AskObject{At: proto.InvalidTid, Before: backupTid + 1}},
		{proto.AskObject{At: proto.InvalidTid, Before: 50}, proto.AskObject{At: proto.InvalidTid, Before: 50}},
		{proto.AskObject{At: 500, Before: proto.InvalidTid}, proto.AskObject{At: 0, Before: proto.InvalidTid}},
		{proto.AskObject{At: 50, Before: proto.InvalidTid}, proto.AskObject{At: 50, Before: proto.InvalidTid}},
	} {
		m := tc.in
		if done, err := c.readOnly(ctx, req(&m)); done || err != nil {
			t.Fatalf("AskObject %+v: done=%v err=%v", tc.in, done, err)
		}
		if m != tc.want {
			t.Errorf("AskObject %+v became %+v, want %+v", tc.in, m, tc.want)
		}
	}
	tf := &proto.AskTIDsFrom{MaxTid: 1000}
	c.readOnly(ctx, req(tf))
	if tf.MaxTid != backupTid {
		t.Errorf("AskTIDsFrom max tid %v, want %v", tf.MaxTid, backupTid)
	}
}
