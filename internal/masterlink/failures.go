package masterlink

import (
	"errors"
	"log/slog"

	"github.com/neogo/neo/neonet"
	"github.com/neogo/neo/proto"
)

// failures logs the failed attempts of one search: what only the
// operator can fix at every attempt, other failures once per master until
// they change. It is owned by the goroutine of [Dialer.Dial].
type failures struct {
	log  *slog.Logger
	said map[string]string
}

func newFailures(log *slog.Logger) *failures {
	return &failures{log: log, said: map[string]string{}}
}

// report logs the failure err of an attempt on the master at addr.
func (f *failures) report(addr string, err error) {
	if errors.Is(err, proto.ErrProtocol) || errors.Is(err, neonet.ErrVersionMismatch) {
		// Another cluster name or protocol version: only the operator
		// can fix it; retried as neoppod does, loudly.
		msg := "the master refused our identification"
		if errors.Is(err, neonet.ErrVersionMismatch) {
			msg = "the master speaks another protocol version"
		}
		f.log.Error(msg, "master", addr, "err", err)
		return
	}
	if msg := err.Error(); f.said[addr] != msg {
		f.said[addr] = msg
		f.log.Info("master not available", "master", addr, "err", err)
	} else {
		f.log.Debug("master not available", "master", addr, "err", err)
	}
}
