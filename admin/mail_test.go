package admin

import (
	"bufio"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/neogo/neo/proto"
)

// fakeSMTP accepts SMTP sessions and hands each received message to mails.
func fakeSMTP(t *testing.T) (addr string, mails <-chan string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ch := make(chan string, 10)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serveSMTP(c, ch)
		}
	}()
	return ln.Addr().String(), ch
}

func serveSMTP(c net.Conn, mails chan<- string) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(testTimeout))
	r := bufio.NewReader(c)
	say := func(s string) { c.Write([]byte(s + "\r\n")) }
	say("220 fake ESMTP")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.ToUpper(strings.TrimSpace(line))
		switch {
		case strings.HasPrefix(cmd, "EHLO"), strings.HasPrefix(cmd, "HELO"):
			say("250 fake")
		case strings.HasPrefix(cmd, "DATA"):
			say("354 go on")
			var msg strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				msg.WriteString(l)
			}
			mails <- msg.String()
			say("250 queued")
		case strings.HasPrefix(cmd, "QUIT"):
			say("221 bye")
			return
		default:
			say("250 ok")
		}
	}
}

func header(msg, name string) string {
	for _, l := range strings.Split(msg, "\r\n") {
		if v, ok := strings.CutPrefix(l, name+": "); ok {
			return v
		}
	}
	return ""
}

func TestMailer(t *testing.T) {
	addr, mails := fakeSMTP(t)
	m := newMailer("prod", MonitorConfig{Emails: []string{"ops@example.com", "dev@example.com"}, SMTP: addr, From: "neo@example.com"},
		slog.New(slog.DiscardHandler))
	ok := Monitor{ClusterState: proto.Some(proto.RUNNING), PTSummary: map[proto.CellState]int{proto.UP_TO_DATE: 4}}
	bad := Monitor{ClusterState: proto.Some(proto.RUNNING), PTSummary: map[proto.CellState]int{proto.UP_TO_DATE: 2, proto.OUT_OF_DATE: 2}, Down: 1}

	next := func() string {
		t.Helper()
		select {
		case msg := <-mails:
			return msg
		case <-time.After(testTimeout):
			t.Fatal("no mail")
			return ""
		}
	}

	m.changed(ok, true)
	m.notify(t.Context())
	msg := next()
	if s := header(msg, "Subject"); s != "NEO monitoring: OK" {
		t.Errorf("subject %q", s)
	}
	if f := header(msg, "From"); f != `"NEO prod" <neo@example.com>` {
		t.Errorf("from %q", f)
	}
	if to := header(msg, "To"); to != "ops@example.com, dev@example.com" {
		t.Errorf("to %q", to)
	}
	if !strings.HasSuffix(msg, "\r\n\r\nRUNNING; UP_TO_DATE=4\r\n") {
		t.Errorf("body of\n%s", msg)
	}

	// Nothing changed: no mail.
	m.changed(ok, true)
	m.notify(t.Context())
	m.changed(bad, true)
	m.notify(t.Context())
	msg = next()
	if s := header(msg, "Subject"); s != "NEO monitoring: PROBLEM (prod)" {
		t.Errorf("subject %q", s)
	}
	if !strings.Contains(msg, "RUNNING; OUT_OF_DATE=2, UP_TO_DATE=2; DOWN=1") {
		t.Errorf("body of\n%s", msg)
	}

	m.changed(bad, false)
	m.notify(t.Context())
	if msg := next(); !strings.Contains(msg, "\r\n\r\nNot connected to a primary master.\r\n") {
		t.Errorf("body of\n%s", msg)
	}
	select {
	case msg := <-mails:
		t.Errorf("unexpected mail\n%s", msg)
	default:
	}
}

func TestMailerFailure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nobody listens there now
	m := newMailer("prod", MonitorConfig{Emails: []string{"ops@example.com"}, SMTP: addr, From: "neo@example.com"},
		slog.New(slog.DiscardHandler))
	m.changed(Monitor{ClusterState: proto.Some(proto.RUNNING), PTSummary: map[proto.CellState]int{proto.UP_TO_DATE: 1}}, true)
	m.notify(t.Context())
	f := m.failure()
	if !strings.HasPrefix(f, "\n\nA notification could not be sent at ") {
		t.Fatalf("failure %q", f)
	}
	// neoctl's summary reports it as a problem.
	a := monitorAnswer(Monitor{ClusterState: proto.Some(proto.RUNNING), PTSummary: map[proto.CellState]int{proto.UP_TO_DATE: 1}}, nil, 0, f)
	if len(a.Problems) != 1 || !strings.Contains(a.Summary, "could not be sent") {
		t.Errorf("answer %+v", a)
	}
	if (*mailer)(nil).failure() != "" {
		t.Error("nil mailer reports a failure")
	}
}
