// Package smtptest is an SMTP server for tests: it accepts every session
// on a loopback port and hands each message received to the test. It
// speaks enough of RFC 5321 for net/smtp's client and neoppod's smtplib
// (EHLO/HELO, MAIL, RCPT, DATA with dot-stuffing, RSET, NOOP, QUIT); no
// TLS, no authentication.
package smtptest

import (
	"bufio"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// Mail is a message received.
type Mail struct {
	From string   // MAIL FROM's address
	To   []string // RCPT TO's addresses
	Data string   // the message, headers and body, lines ending in CRLF
}

// Header returns the value of the message's header name ("" if none).
func (m Mail) Header(name string) string {
	head, _, _ := strings.Cut(m.Data, "\r\n\r\n")
	for _, l := range strings.Split(head, "\r\n") {
		if v, ok := strings.CutPrefix(l, name+": "); ok {
			return v
		}
	}
	return ""
}

// Body returns the message's body.
func (m Mail) Body() string {
	_, body, _ := strings.Cut(m.Data, "\r\n\r\n")
	return body
}

// Server is a running test SMTP server.
type Server struct {
	// Addr is where it listens, "127.0.0.1:PORT".
	Addr string
	// Mails receives the messages, in the order their DATA ended.
	Mails <-chan Mail

	ln    net.Listener
	mails chan Mail
	done  chan struct{} // closed at the end of the test: stop handing mails
	wg    sync.WaitGroup
}

// Start starts a server, closed at the end of the test. A session
// lasts at most timeout.
func Start(tb testing.TB, timeout time.Duration) *Server {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s := &Server{Addr: ln.Addr().String(), ln: ln, mails: make(chan Mail, 100), done: make(chan struct{})}
	s.Mails = s.mails
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Go(func() { s.serve(c, timeout) })
		}
	})
	tb.Cleanup(func() {
		close(s.done)
		ln.Close()
		s.wg.Wait()
	})
	return s
}

// Next returns the next message, failing the test if none comes within
// timeout.
func (s *Server) Next(tb testing.TB, timeout time.Duration) Mail {
	tb.Helper()
	select {
	case m := <-s.Mails:
		return m
	case <-time.After(timeout):
		tb.Fatalf("no mail within %v", timeout)
		return Mail{}
	}
}

func (s *Server) serve(c net.Conn, timeout time.Duration) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	r := bufio.NewReader(c)
	say := func(line string) { c.Write([]byte(line + "\r\n")) }
	say("220 smtptest ESMTP")
	var m Mail
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO", "HELO":
			say("250 smtptest")
		case "MAIL":
			m = Mail{From: address(arg)}
			say("250 sender ok")
		case "RCPT":
			m.To = append(m.To, address(arg))
			say("250 recipient ok")
		case "DATA":
			if len(m.To) == 0 {
				say("503 no recipient")
				continue
			}
			say("354 end with <CRLF>.<CRLF>")
			var b strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				b.WriteString(strings.TrimPrefix(l, ".")) // dot-stuffing
			}
			m.Data = b.String()
			select {
			case s.mails <- m:
			case <-s.done:
				return
			}
			m = Mail{}
			say("250 queued")
		case "RSET":
			m = Mail{}
			say("250 ok")
		case "NOOP":
			say("250 ok")
		case "QUIT":
			say("221 bye")
			return
		default:
			say("502 not implemented")
		}
	}
}

// address returns the address of "FROM:<a@b> ..." or "TO:<a@b>".
func address(arg string) string {
	_, a, _ := strings.Cut(arg, "<")
	a, _, _ = strings.Cut(a, ">")
	return a
}
