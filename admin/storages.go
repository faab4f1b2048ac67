package admin

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/neogo/neo/neonet"
	"github.com/neogo/neo/proto"
)

// storageTimeout bounds the wait for the storages' reports: a storage that
// hangs must not hold neoctl's summary for long.
const storageTimeout = 5 * time.Second

// storageReports asks every running storage, in parallel and within
// storageTimeout, what it does in the background that the master does not
// know (today the Importer backend's progress), and returns it as
// summary parts, "; S1: importing ...". Storages of neoppod refuse an
// admin's link: they, and storages that do not answer in time, report
// nothing.
func (n *Node) storageReports(ctx context.Context) string {
	n.mu.Lock()
	var storages []proto.NodeInfo
	for _, e := range n.mu.v.nodes.Entries() {
		if e.Type == proto.STORAGE && e.State == proto.NODE_RUNNING && e.Addr.Host != "" {
			storages = append(storages, proto.NodeInfo(e))
		}
	}
	n.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, storageTimeout)
	defer cancel()
	reports := make([]string, len(storages))
	var wg sync.WaitGroup
	for i, s := range storages {
		wg.Add(1)
		go func() {
			defer wg.Done()
			text, err := n.askStorage(ctx, s.Addr.String())
			if err != nil {
				n.log.Debug("storage report", "storage", s.NID, "err", err)
				return
			}
			if text != "" {
				reports[i] = fmt.Sprintf("; %s: %s", s.NID, text)
			}
		}()
	}
	wg.Wait()
	slices.Sort(reports)
	return strings.Join(reports, "")
}

// askStorage asks AskMonitorInformation to the storage at addr. The
// identification is anonymous: a storage of neoppod refuses it at once
// (with our id and no id_timestamp, it would fail on an exception).
func (n *Node) askStorage(ctx context.Context, addr string) (string, error) {
	link, err := neonet.Dial(ctx, "tcp", addr, neonet.Config{Logger: n.log, TLS: n.cfg.TLS})
	if err != nil {
		return "", err
	}
	defer link.Close()
	var acc proto.AcceptIdentification
	if err := link.Ask(ctx, &proto.RequestIdentification{NodeType: proto.ADMIN, Addr: n.addr, ClusterName: n.cfg.Cluster}, &acc); err != nil {
		return "", fmt.Errorf("identify to storage %s: %w", addr, err)
	}
	var a proto.AnswerMonitorInformation
	if err := link.Ask(ctx, &proto.AskMonitorInformation{}, &a); err != nil {
		return "", fmt.Errorf("ask storage %s: %w", addr, err)
	}
	return a.Summary, nil
}
