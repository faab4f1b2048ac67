package admin

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/neogo/neo/internal/smtptest"
	"github.com/neogo/neo/proto"
)

// testHealth is the health the mailer of a test evaluates: that of the
// clusters the test sets, as the Node computes it.
type testHealth struct {
	mu        sync.Mutex
	connected bool
	mon       Monitor
	backups   []*backupMon
	maxLag    float64
}

func (h *testHealth) set(connected bool, mon Monitor, backups ...backupMon) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.connected, h.mon = connected, mon
	// The Node keeps its backups across evaluations (their Lagging).
	for i, b := range backups {
		if i < len(h.backups) {
			b.Lagging = h.backups[i].Lagging
			*h.backups[i] = b
		} else {
			h.backups = append(h.backups, &b)
		}
	}
}

func (h *testHealth) health(context.Context) health {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.connected {
		return notConnectedHealth()
	}
	return healthOf(h.mon, h.backups, h.maxLag)
}

func noMail(t *testing.T, s *smtptest.Server) {
	t.Helper()
	select {
	case m := <-s.Mails:
		t.Errorf("unexpected mail\n%s", m.Data)
	default:
	}
}

func TestMailer(t *testing.T) {
	s := smtptest.Start(t, testTimeout)
	var h testHealth
	m := newMailer("prod", MonitorConfig{Emails: []string{"ops@example.com", "dev@example.com"}, SMTP: s.Addr, From: "neo@example.com"},
		slog.New(slog.DiscardHandler), h.health)
	ok := Monitor{ClusterState: proto.Some(proto.RUNNING), PTSummary: map[proto.CellState]int{proto.UP_TO_DATE: 4}}
	bad := Monitor{ClusterState: proto.Some(proto.RUNNING), PTSummary: map[proto.CellState]int{proto.UP_TO_DATE: 2, proto.OUT_OF_DATE: 2}, Down: 1}

	h.set(true, ok)
	if m.notify(t.Context()) {
		t.Error("evaluated again with no backup")
	}
	msg := s.Next(t, testTimeout)
	if s := msg.Header("Subject"); s != "NEO monitoring: OK" {
		t.Errorf("subject %q", s)
	}
	if f := msg.Header("From"); f != `"NEO prod" <neo@example.com>` {
		t.Errorf("from %q", f)
	}
	if to := msg.Header("To"); to != "ops@example.com, dev@example.com" {
		t.Errorf("to %q", to)
	}
	if msg.From != "neo@example.com" || strings.Join(msg.To, " ") != "ops@example.com dev@example.com" {
		t.Errorf("envelope %s -> %v", msg.From, msg.To)
	}
	if b := msg.Body(); b != "RUNNING; UP_TO_DATE=4\r\n" {
		t.Errorf("body %q", b)
	}

	// Nothing changed: no mail.
	m.notify(t.Context())
	noMail(t, s)
	h.set(true, bad)
	m.notify(t.Context())
	msg = s.Next(t, testTimeout)
	if s := msg.Header("Subject"); s != "NEO monitoring: PROBLEM (prod)" {
		t.Errorf("subject %q", s)
	}
	if !strings.Contains(msg.Body(), "RUNNING; OUT_OF_DATE=2, UP_TO_DATE=2; DOWN=1") {
		t.Errorf("body of\n%s", msg.Data)
	}

	h.set(false, bad)
	m.notify(t.Context())
	if msg := s.Next(t, testTimeout); msg.Body() != notConnected+"\r\n" || msg.Header("Subject") != "NEO monitoring: PROBLEM (prod)" {
		t.Errorf("mail\n%s", msg.Data)
	}
	noMail(t, s)
}

// The notifications tell the backups' health (cluster.md §9.4): each one's
// summary with its lag behind this cluster, a mail when a backup changes
// state or starts or stops lagging, none when only the tids moved; the
// subject names the clusters in trouble that changed.
func TestMailerBackups(t *testing.T) {
	s := smtptest.Start(t, testTimeout)
	h := testHealth{maxLag: 10}
	m := newMailer("prod", MonitorConfig{Emails: []string{"ops@example.com"}, SMTP: s.Addr, From: "neo@example.com"},
		slog.New(slog.DiscardHandler), h.health)
	pt := map[proto.CellState]int{proto.UP_TO_DATE: 4}
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	tid := func(d time.Duration) proto.Tid { return proto.TidFromTime(t0.Add(d)) }
	up := func(d time.Duration) Monitor {
		return Monitor{ClusterState: proto.Some(proto.RUNNING), PTSummary: pt, LastTid: proto.Some(tid(d))}
	}
	backingUp := func(name string, d time.Duration) backupMon {
		return backupMon{Name: name, Monitor: Monitor{ClusterState: proto.Some(proto.BACKINGUP), PTSummary: pt, BackupTid: proto.Some(tid(d))}}
	}
	notify := func(wantAgain bool) {
		t.Helper()
		if again := m.notify(t.Context()); again != wantAgain {
			t.Errorf("evaluate again: %v, want %v", again, wantAgain)
		}
	}
	expect := func(subject string, body ...string) {
		t.Helper()
		msg := s.Next(t, testTimeout)
		if got := msg.Header("Subject"); got != subject {
			t.Errorf("subject %q, want %q", got, subject)
		}
		if want := strings.Join(body, "\r\n") + "\r\n"; msg.Body() != want {
			t.Errorf("body\n%q\nwant\n%q", msg.Body(), want)
		}
	}
	upLine := func(d time.Duration) string {
		return "RUNNING; UP_TO_DATE=4; ltid=" + hex(tid(d)) + " (" + proto.FormatTidTime(tid(d)) + ")"
	}

	// Both in sync, then the backup 2 s behind: OK, one mail.
	h.set(true, up(time.Second), backingUp("bk", time.Second), backupMon{Name: "other"})
	notify(true) // both operational: lag detection
	expect("NEO monitoring: PROBLEM (other)", upLine(time.Second), "", "bk", "    BACKINGUP; UP_TO_DATE=4; ltid="+hex(tid(time.Second))+"; lag=0.0",
		"", "other", "    None")
	h.set(true, up(3*time.Second), backingUp("bk", time.Second), backupMon{Name: "other"})
	notify(true)
	noMail(t, s)

	// The backup lags more than 10 s: a warning naming it.
	h.set(true, up(40*time.Second), backingUp("bk", 10*time.Second), backupMon{Name: "other"})
	notify(true)
	expect("NEO monitoring: PROBLEM (bk)", upLine(40*time.Second), "", "bk", "    BACKINGUP; UP_TO_DATE=4; ltid="+hex(tid(10*time.Second))+"; lag=30.0",
		"", "other", "    None")
	// Still lagging, by another amount: no mail.
	h.set(true, up(50*time.Second), backingUp("bk", 15*time.Second), backupMon{Name: "other"})
	notify(true)
	noMail(t, s)

	// The other backup comes and catches up, bk leaves backup mode.
	running := backupMon{Name: "bk", Monitor: Monitor{ClusterState: proto.Some(proto.RUNNING), PTSummary: pt, LastTid: proto.Some(tid(15 * time.Second))}}
	h.set(true, up(50*time.Second), running, backingUp("other", 50*time.Second))
	notify(true)
	expect("NEO monitoring: WARNING (bk)", upLine(50*time.Second), "", "bk",
		"    RUNNING; UP_TO_DATE=4; ltid="+hex(tid(15*time.Second))+" ("+proto.FormatTidTime(tid(15*time.Second))+")",
		"", "other", "    BACKINGUP; UP_TO_DATE=4; ltid="+hex(tid(50*time.Second))+"; lag=0.0")
	// No backup operational: nothing to watch.
	h.set(true, up(50*time.Second), backupMon{Name: "bk"}, backupMon{Name: "other"})
	notify(false)
	expect("NEO monitoring: PROBLEM (bk, other)", upLine(50*time.Second), "", "bk", "    None", "", "other", "    None")
}

func TestMailerFailure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nobody listens there now
	var h testHealth
	m := newMailer("prod", MonitorConfig{Emails: []string{"ops@example.com"}, SMTP: addr, From: "neo@example.com"},
		slog.New(slog.DiscardHandler), h.health)
	h.set(true, Monitor{ClusterState: proto.Some(proto.RUNNING), PTSummary: map[proto.CellState]int{proto.UP_TO_DATE: 1}})
	if !m.notify(t.Context()) {
		t.Error("a failure is not retried")
	}
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
