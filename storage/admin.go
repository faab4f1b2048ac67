package storage

import (
	"context"

	"github.com/neogo/neo/neonet"
	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage/backend"
)

// serveAdmin serves a link from an admin node of our implementation (a
// neoppod storage refuses them): it asks AskMonitorInformation to learn
// what the storage does in the background that the master does not know,
// today the Importer's progress, which neoctl's "print summary" shows.
// Nothing else is served, so that an admin's identification needs no
// check beyond the cluster name (and TLS, if used).
func (n *Node) serveAdmin(ctx context.Context, link *neonet.Link, id *neonet.Request) {
	defer link.Close()
	if id.Msg.(*proto.RequestIdentification).ClusterName != n.cfg.Cluster {
		id.Reply(&proto.Error{Code: proto.PROTOCOL_ERROR, Message: "invalid cluster name"})
		return
	}
	// Anonymous (our admins do not give their id), answered as such.
	if err := id.Reply(&proto.AcceptIdentification{NodeType: proto.STORAGE}); err != nil {
		return
	}
	for {
		r, err := link.Recv(ctx)
		if err != nil {
			return
		}
		if _, ok := r.Msg.(*proto.AskMonitorInformation); !ok {
			r.Reply(&proto.Error{Code: proto.PROTOCOL_ERROR, Message: "an admin may only ask AskMonitorInformation to a storage, not " + proto.MsgName(r.Msg.NEOMsgCode())})
			return
		}
		if err := r.Reply(&proto.AnswerMonitorInformation{Warnings: []proto.Opt[string]{}, Problems: []proto.Opt[string]{},
			Summary: backend.ImportProgress(n.db)}); err != nil {
			return
		}
	}
}
