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
	"strings"
	"sync"
	"time"
)

// mailRetry is how often the health is evaluated again after a failed
// notification (neoppod: 10 minutes).
const mailRetry = 10 * time.Minute

// mailer sends e-mail notifications when the health of the cluster changes
// (cluster.md §9.4). The Node calls changed under its mutex after every
// update; sending happens on the mailer's own goroutine, started by run.
// Its methods accept a nil mailer (notifications disabled).
type mailer struct {
	cluster string
	cfg     MonitorConfig
	from    string
	log     *slog.Logger
	kick    chan struct{}

	mu struct {
		sync.Mutex
		mon       Monitor
		connected bool
		sent      string // body of the last notification sent
		failure   string // report of the last failure, appended to the next body
	}
}

func newMailer(cluster string, cfg MonitorConfig, log *slog.Logger) *mailer {
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
	m := &mailer{cluster: cluster, cfg: cfg, log: log, kick: make(chan struct{}, 1)}
	m.from = (&mail.Address{Name: "NEO " + cluster, Address: from}).String()
	return m
}

// changed records the current health; the mailer goroutine notifies if
// the message to send differs from the last one sent.
func (m *mailer) changed(mon Monitor, connected bool) {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.mu.mon, m.mu.connected = mon, connected
	m.mu.Unlock()
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

// run sends notifications until ctx ends.
func (m *mailer) run(ctx context.Context) {
	timer := time.NewTimer(mailRetry)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.kick:
		case <-timer.C:
		}
		m.notify(ctx)
		timer.Reset(mailRetry)
	}
}

// message returns the subject and body for the current health.
func (m *mailer) message() (subject, body string) {
	m.mu.Lock()
	mon, connected, sent := m.mu.mon, m.mu.connected, m.mu.sent
	m.mu.Unlock()
	sev := SeverityProblem
	body = notConnected
	if connected {
		sev, body = mon.Severity(), mon.Summary()
	}
	subject = "NEO monitoring: OK"
	switch sev {
	case SeverityWarning:
		subject = "NEO monitoring: WARNING"
	case SeverityProblem:
		subject = "NEO monitoring: PROBLEM"
	}
	if sev != SeverityOK && body != sent {
		subject += " (" + m.cluster + ")"
	}
	return subject, body
}

func (m *mailer) notify(ctx context.Context) {
	subject, body := m.message()
	m.mu.Lock()
	failure := m.mu.failure
	skip := body == m.mu.sent && failure == ""
	m.mu.Unlock()
	if skip {
		return
	}
	date := time.Now().Format(time.RFC1123Z)
	err := m.send(ctx, subject, date, body+failure)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		m.log.Error("monitoring notification failed", "err", err)
		m.mu.failure = fmt.Sprintf("\n\nA notification could not be sent at %s:\n\n%v", date, err)
		return
	}
	m.mu.sent, m.mu.failure = body, ""
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
