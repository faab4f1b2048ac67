// Package masterlog logs the failed attempts of a node (storage, admin)
// to connect to a master, the same way for every node: what only the
// operator can fix at every attempt, other failures once per master
// until they change.
package masterlog

import (
	"errors"
	"log/slog"

	"github.com/neogo/neo/neonet"
	"github.com/neogo/neo/proto"
)

// Failures remembers the last failure logged per master. Its zero value
// is not usable: see [New]. It is not safe for concurrent use (one
// connection loop owns it).
type Failures struct {
	log  *slog.Logger
	said map[string]string
}

// New returns a Failures logging to log.
func New(log *slog.Logger) *Failures {
	return &Failures{log: log, said: map[string]string{}}
}

// Report logs the failure err of an attempt on the master at addr.
func (f *Failures) Report(a string, err error) {
	if errors.Is(err, proto.ErrProtocol) || errors.Is(err, neonet.ErrVersionMismatch) {
		// Another cluster name or protocol version: only the operator
		// can fix it; retried as neoppod does, loudly.
		msg := "the master refused our identification"
		if errors.Is(err, neonet.ErrVersionMismatch) {
			msg = "the master speaks another protocol version"
		}
		f.log.Error(msg, "master", a, "err", err)
		return
	}
	if msg := err.Error(); f.said[a] != msg {
		f.said[a] = msg
		f.log.Info("master not available", "master", a, "err", err)
	} else {
		f.log.Debug("master not available", "master", a, "err", err)
	}
}
