package admin

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/mail"
	"net/smtp"
	"os"
	"os/user"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/neogo/neo/proto"
)

// mailRetry is how often the health is evaluated again after a failed
// notification (neoppod: 10 minutes).
const mailRetry = 10 * time.Minute

// mailer sends e-mail notifications when the health of the cluster or of
// a monitored backup changes (cluster.md §9.4): a change of state, cell
// counts or nodes down, or a backup starting or ceasing to lag. Each
// evaluation asks the tids that the body shows (health); while this
// cluster and a backup are operational, and after a failed sending, it
// is done again every mailRetry, which notices a backup that lags. The
// Node kicks it (changed) after every update, under its mutex; the
// evaluations run on the mailer's own goroutine, started by run. Its
// methods accept a nil mailer (notifications disabled).
type mailer struct {
	cluster string
	cfg     MonitorConfig
	from    string
	log     *slog.Logger
	kick    chan struct{}
	// health evaluates the clusters' health (Node.mailHealth).
	health func(ctx context.Context) health

	// keys are the clusters' keys (see health) at the last evaluation;
	// owned by the run goroutine.
	keys map[string]string

	mu struct {
		sync.Mutex
		failure string // report of the last failure, appended to the next body
	}
}

// health is what an evaluation of the notifications sees.
type health struct {
	// answer is what neoctl's print summary would show, without a
	// failure's report: the body, and the clusters in warning and
	// problem state (an invalid name standing for this one).
	answer *proto.AnswerMonitorInformation
	// keys tell, for each cluster ("" for this one), what a change is:
	// its state, cell counts, nodes down and, for a backup, whether it
	// lags; not its tids, which change at every commit.
	keys map[string]string
	// watch: this cluster and a backup are operational, so a backup
	// may start lagging without any other change.
	watch bool
}

// healthOf is the health of this cluster, mon, and of the monitored
// backups (whose Lagging it updates), with maxLag the most a backup may
// lag.
func healthOf(mon Monitor, backups []*backupMon, maxLag float64) health {
	h := health{answer: monitorAnswer(mon, backups, maxLag, ""), keys: map[string]string{"": mon.stateSummary()}}
	for _, b := range backups {
		h.keys[b.Name] = fmt.Sprintf("%s; lagging=%t", b.stateSummary(), b.Lagging)
		h.watch = h.watch || b.Operational()
	}
	h.watch = h.watch && mon.Operational()
	return h
}

// notConnectedHealth is the health while the admin is not connected to
// a primary master: this cluster is a problem, the backups not shown.
func notConnectedHealth() health {
	return health{
		answer: &proto.AnswerMonitorInformation{Warnings: []proto.Opt[string]{}, Problems: []proto.Opt[string]{{}}, Summary: notConnected},
		keys:   map[string]string{"": notConnected},
	}
}

func newMailer(cluster string, cfg MonitorConfig, log *slog.Logger, health func(context.Context) health) *mailer {
	from := cfg.From
	if from == "" {
		from = os.Getenv("EMAIL")
	}
	if from == "" {
		name := "neo"
		if u, err := user.Current(); err == nil {
			name = u.Username
		}
		host, _ := os.Hostname()
		from = name + "@" + host
	}
	m := &mailer{cluster: cluster, cfg: cfg, log: log, kick: make(chan struct{}, 1), health: health, keys: map[string]string{}}
	m.from = (&mail.Address{Name: "NEO " + cluster, Address: from}).String()
	return m
}

// changed tells the mailer that the health may have changed: it
// evaluates it again.
func (m *mailer) changed() {
	if m == nil {
		return
	}
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// failure returns the report of the last failed notification, "" if the
// last one succeeded: neoctl's summary shows it too.
func (m *mailer) failure() string {
	if m == nil {
		return ""
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.mu.failure
}

// run evaluates the health and notifies until ctx ends.
func (m *mailer) run(ctx context.Context) {
	timer := time.NewTimer(mailRetry)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.kick:
		case <-timer.C:
		}
		if m.notify(ctx) {
			timer.Reset(mailRetry)
		} else {
			timer.Stop()
		}
	}
}

// notify evaluates the health, sends a notification if a cluster
// changed or the last sending failed, and reports whether to evaluate
// again after mailRetry.
func (m *mailer) notify(ctx context.Context) (again bool) {
	h := m.health(ctx)
	if ctx.Err() != nil {
		return false
	}
	changed := map[string]bool{}
	for c, k := range h.keys {
		if old, ok := m.keys[c]; !ok || old != k {
			changed[c] = true
		}
		m.keys[c] = k
	}
	m.mu.Lock()
	failure := m.mu.failure
	m.mu.Unlock()
	if len(changed) == 0 && failure == "" {
		return h.watch
	}
	date := time.Now().Format(time.RFC1123Z)
	err := m.send(ctx, m.subject(h.answer, changed), date, h.answer.Summary+failure)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		m.log.Error("monitoring notification failed", "err", err)
		if len(changed) > 0 || m.mu.failure == "" {
			m.mu.failure = fmt.Sprintf("\n\nA notification could not be sent at %s:\n\n%v", date, err)
		}
		return true
	}
	m.mu.failure = ""
	return h.watch
}

// subject is the notification's subject for the clusters in warning and
// problem state of a: OK, WARNING or PROBLEM (the worst), followed by the
// names of those among them that changed, sorted.
func (m *mailer) subject(a *proto.AnswerMonitorInformation, changed map[string]bool) string {
	bad, sev := a.Warnings, "WARNING"
	switch {
	case len(a.Problems) > 0:
		bad, sev = append(slices.Clone(a.Warnings), a.Problems...), "PROBLEM"
	case len(a.Warnings) == 0:
		return "NEO monitoring: OK"
	}
	var names []string
	for _, c := range bad {
		if changed[c.V] {
			name := c.V
			if !c.Valid {
				name = m.cluster
			}
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return "NEO monitoring: " + sev
	}
	slices.Sort(names)
	return "NEO monitoring: " + sev + " (" + strings.Join(names, ", ") + ")"
}

func (m *mailer) send(ctx context.Context, subject, date, body string) error {
	host := m.cfg.SMTP
	if host == "" {
		host = "localhost"
	}
	if _, _, err := net.SplitHostPort(host); err != nil {
		host = net.JoinHostPort(strings.Trim(host, "[]"), "25")
	}
	d := net.Dialer{Timeout: monitorTimeout}
	conn, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return fmt.Errorf("smtp %s: %w", host, err)
	}
	conn.SetDeadline(time.Now().Add(monitorTimeout))
	hostname, _, _ := net.SplitHostPort(host)
	c, err := smtp.NewClient(conn, hostname)
	if err != nil {
		conn.Close()
		return fmt.Errorf("smtp %s: %w", host, err)
	}
	defer c.Close()
	if m.cfg.SMTPTLS {
		if err := c.StartTLS(&tls.Config{ServerName: hostname}); err != nil {
			return fmt.Errorf("smtp %s: STARTTLS: %w", host, err)
		}
	}
	if m.cfg.SMTPUser != "" {
		if err := c.Auth(smtp.PlainAuth("", m.cfg.SMTPUser, m.cfg.SMTPPassword, hostname)); err != nil {
			return fmt.Errorf("smtp %s: auth: %w", host, err)
		}
	}
	from, err := mail.ParseAddress(m.from)
	if err != nil {
		return fmt.Errorf("sender %q: %w", m.from, err)
	}
	if err := c.Mail(from.Address); err != nil {
		return fmt.Errorf("smtp %s: MAIL: %w", host, err)
	}
	for _, to := range m.cfg.Emails {
		if err := c.Rcpt(to); err != nil {
			return fmt.Errorf("smtp %s: RCPT %s: %w", host, to, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("smtp %s: DATA: %w", host, err)
	}
	msg := "Date: " + date + "\r\nSubject: " + subject + "\r\nFrom: " + m.from +
		"\r\nTo: " + strings.Join(m.cfg.Emails, ", ") +
		"\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=\"utf-8\"\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" +
		strings.ReplaceAll(body, "\n", "\r\n") + "\r\n"
	if _, err := w.Write([]byte(msg)); err != nil {
		return fmt.Errorf("smtp %s: %w", host, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("smtp %s: %w", host, err)
	}
	return c.Quit()
}
