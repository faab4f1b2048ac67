package core

import (
	"testing"

	"github.com/neogo/neo/proto"
)

// BenchmarkCommit measures the core's work for one transaction: begin,
// finish, two lock answers, commit (answer, invalidation, unlocks).
func BenchmarkCommit(b *testing.B) {
	h, storages, client := runningCluster(b)
	h.identify(proto.CLIENT, 0, 0, nil) // receives invalidations
	oids := []proto.Oid{1, 2, 3}
	b.ReportAllocs()
	for b.Loop() {
		h.msgID++
		out := h.c.Step(Recv{Conn: client, MsgID: h.msgID, Msg: &proto.AskBeginTransaction{Tid: proto.InvalidTid}})
		ttid := out[0].Msg.(*proto.AnswerBeginTransaction).TTid
		h.msgID++
		out = h.c.Step(Recv{Conn: client, MsgID: h.msgID, Msg: &proto.AskFinishTransaction{TTid: ttid, OidList: oids}})
		tags := [2]uint64{out[0].Tag, out[1].Tag}
		h.c.Step(Answer{Conn: storages[0], Tag: tags[0], Msg: &proto.AnswerInformationLocked{TTid: ttid}})
		out = h.c.Step(Answer{Conn: storages[1], Tag: tags[1], Msg: &proto.AnswerInformationLocked{TTid: ttid}})
		if len(out) == 0 {
			b.Fatal("not committed")
		}
	}
}
