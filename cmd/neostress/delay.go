package main

// The delay fault: latency on the TCP traffic to a storage, through a
// small proxy in this tool. The kernel here has no netem (tc knows only
// htb, pfifo, bfifo), so the latency is added in user space, and since a
// storage announces the address it binds (no separate advertised
// address), the proxy cannot simply take the storage's place: with
// --fault delay, storage i binds a fixed port (NEO_STORAGE_PORT_BASE =
// --port-base + 50), and a DNAT rule of the nat table's OUTPUT chain
// (iptables) sends every new connection to 127.0.0.1:PORT to the
// storage's proxy, which dials the storage from 127.0.0.2 (a source the
// rule excludes). So every connection accepted by a storage, from
// clients and from replicating or checking storages, goes through its
// proxy for the whole run, with no latency until a delay fault sets it
// for --delay-for:
//
//	client ──> 127.0.0.1:PORT ──DNAT──> proxy 127.0.0.1:Q ──from 127.0.0.2──> storage 127.0.0.1:PORT
//
// Not delayed: the connections a storage opens itself (to the master, to
// storages it replicates from), whose traffic the master exchanges with
// it; and what the kernel does (SYN, ACK, window): data is delayed, by
// chunk as read, in order.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// proxySource is the address the proxies dial from; the DNAT rules do
// not apply to it.
const proxySource = "127.0.0.2"

// storagePortOffset: with --fault delay, storage i listens on
// --port-base + storagePortOffset + i.
const storagePortOffset = 50

// delayProxy forwards the connections to one storage, each chunk of data
// after the latency set when it was read. mu guards the fields in it.
type delayProxy struct {
	target string // the storage's address
	ln     net.Listener
	wg     sync.WaitGroup // serve and the connections' goroutines

	mu struct {
		sync.Mutex
		delay, jitter time.Duration
		rnd           *rand.Rand
		delayed       int // chunks forwarded with a latency
		conns         map[net.Conn]struct{}
		closed        bool
	}
}

// newDelayProxy listens on 127.0.0.1:0 and forwards to target.
func newDelayProxy(target string, seed int64) (*delayProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &delayProxy{target: target, ln: ln}
	p.mu.rnd = rand.New(rand.NewSource(seed))
	p.mu.conns = map[net.Conn]struct{}{}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

func (p *delayProxy) port() int { return p.ln.Addr().(*net.TCPAddr).Port }

// set sets the latency of the data read from now on (jitter: uniform in
// ±jitter, never below 0); it returns the count of chunks delayed so far.
func (p *delayProxy) set(delay, jitter time.Duration) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mu.delay, p.mu.jitter = delay, jitter
	return p.mu.delayed
}

// latency is the latency of a chunk of data read now.
func (p *delayProxy) latency() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	d := p.mu.delay
	if p.mu.jitter > 0 {
		d += time.Duration(p.mu.rnd.Int63n(int64(2*p.mu.jitter)+1)) - p.mu.jitter
	}
	if p.mu.delay > 0 {
		p.mu.delayed++
	}
	return max(d, 0)
}

func (p *delayProxy) serve() {
	defer p.wg.Done()
	for {
		down, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.handle(down)
		}()
	}
}

// track registers c (false once closed: c is closed then).
func (p *delayProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mu.closed {
		c.Close()
		return false
	}
	p.mu.conns[c] = struct{}{}
	return true
}

func (p *delayProxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.mu.conns, c)
	p.mu.Unlock()
}

// handle forwards one connection both ways. A storage that does not
// answer (killed) closes the accepted connection with a reset: the
// client sees the connection fail, where without the proxy it would be
// refused.
func (p *delayProxy) handle(down net.Conn) {
	if !p.track(down) {
		return
	}
	defer p.untrack(down)
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(proxySource)}}
	up, err := d.Dial("tcp", p.target)
	if err != nil {
		abort(down)
		return
	}
	if !p.track(up) {
		abort(down)
		return
	}
	defer p.untrack(up)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.pipe(down, up) }()
	go func() { defer wg.Done(); p.pipe(up, down) }()
	wg.Wait()
	down.Close()
	up.Close()
}

// chunk is data read by a pipe, due for writing at due; err is the end
// of the stream (io.EOF: a half close) to pass on in its turn.
type chunk struct {
	data []byte
	due  time.Time
	err  error
}

// pipe copies src to dst, each chunk written at its due time, in order.
// The end of src is passed on when its turn comes: a half close as a
// half close, an error as a reset of both connections.
func (p *delayProxy) pipe(src, dst net.Conn) {
	q := make(chan chunk, 256)
	go func() {
		defer close(q)
		var last time.Time
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			due := time.Now()
			if n > 0 {
				due = due.Add(p.latency())
			}
			if due.Before(last) {
				due = last // TCP keeps the order
			}
			last = due
			if n > 0 {
				q <- chunk{data: append([]byte(nil), buf[:n]...), due: due}
			}
			if err != nil {
				q <- chunk{due: due, err: err}
				return
			}
		}
	}()
	for c := range q {
		if d := time.Until(c.due); d > 0 {
			time.Sleep(d)
		}
		if c.err != nil {
			if errors.Is(c.err, io.EOF) {
				if tc, ok := dst.(*net.TCPConn); ok {
					_ = tc.CloseWrite()
					continue
				}
			}
			abort(dst)
			abort(src)
			continue
		}
		if _, err := dst.Write(c.data); err != nil {
			abort(dst)
			abort(src)
		}
	}
}

// abort closes c with a reset (no lingering data).
func abort(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	c.Close()
}

// close stops the proxy: its listener and every connection (reset).
func (p *delayProxy) close() {
	p.mu.Lock()
	p.mu.closed = true
	for c := range p.mu.conns {
		abort(c)
	}
	p.mu.Unlock()
	p.ln.Close()
	p.wg.Wait()
}

// natRule is a DNAT rule sending new connections to 127.0.0.1:from
// (except from proxySource) to 127.0.0.1:to.
type natRule struct{ from, to int }

func (r natRule) args(op string) []string {
	return []string{"-w", "-t", "nat", op, "OUTPUT", "-p", "tcp", "-d", "127.0.0.1", "--dport", strconv.Itoa(r.from),
		"!", "-s", proxySource, "-m", "comment", "--comment", "neostress-" + strconv.Itoa(os.Getpid()),
		"-j", "DNAT", "--to-destination", "127.0.0.1:" + strconv.Itoa(r.to)}
}

// iptablesBin is the iptables command that works here: the legacy one
// first (this machine's kernel has x_tables but no nf_tables).
func iptablesBin(ctx context.Context) (string, error) {
	var errs []error
	for _, b := range []string{"iptables-legacy", "iptables"} {
		path, err := exec.LookPath(b)
		if err != nil {
			continue
		}
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		out, err := exec.CommandContext(ctx, path, "-w", "-t", "nat", "-S", "OUTPUT").CombinedOutput()
		cancel()
		if err == nil {
			return path, nil
		}
		errs = append(errs, fmt.Errorf("%s -t nat -S OUTPUT: %w: %s", b, err, out))
	}
	if len(errs) == 0 {
		return "", errors.New("delay: needs iptables (apt-get install iptables) and root, for the DNAT rules to the proxies")
	}
	return "", fmt.Errorf("delay: no usable iptables (needs root and the kernel's nat table): %w", errors.Join(errs...))
}

func (r natRule) apply(ctx context.Context, bin, op string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, bin, r.args(op)...).CombinedOutput(); err != nil {
		return fmt.Errorf("iptables %s: %w: %s", op, err, out)
	}
	return nil
}

// delayNet is the proxies of a cluster's storages and their DNAT rules.
type delayNet struct {
	bin     string
	proxies map[string]*delayProxy // by node name, storage_i
	rules   []natRule
}

// newDelayNet puts a proxy in front of each storage port (not listening
// yet: the storages start after).
func newDelayNet(ctx context.Context, portBase, storages int, seed int64) (*delayNet, error) {
	bin, err := iptablesBin(ctx)
	if err != nil {
		return nil, err
	}
	dn := &delayNet{bin: bin, proxies: map[string]*delayProxy{}}
	for i := 0; i < storages; i++ {
		port := portBase + storagePortOffset + i
		p, err := newDelayProxy(fmt.Sprintf("127.0.0.1:%d", port), seed+int64(i))
		if err != nil {
			dn.close()
			return nil, err
		}
		dn.proxies["storage_"+strconv.Itoa(i)] = p
		r := natRule{from: port, to: p.port()}
		if err := r.apply(ctx, bin, "-A"); err != nil {
			dn.close()
			return nil, err
		}
		dn.rules = append(dn.rules, r)
	}
	return dn, nil
}

// close removes the rules and stops the proxies.
func (dn *delayNet) close() {
	for _, r := range dn.rules {
		_ = r.apply(context.Background(), dn.bin, "-D")
	}
	dn.rules = nil
	for _, p := range dn.proxies {
		p.close()
	}
}

// probeDelay checks that a DNAT rule and a proxy work on this machine:
// a connection to a listener goes through the proxy (the listener sees
// it come from proxySource) and gets the proxy's latency.
func probeDelay(ctx context.Context) error {
	bin, err := iptablesBin(ctx)
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
				_, _ = c.Write([]byte(host + "\n"))
			}()
		}
	}()
	port := l.Addr().(*net.TCPAddr).Port
	p, err := newDelayProxy(l.Addr().String(), 1)
	if err != nil {
		return err
	}
	defer p.close()
	p.set(50*time.Millisecond, 0)
	r := natRule{from: port, to: p.port()}
	if err := r.apply(ctx, bin, "-A"); err != nil {
		return err
	}
	defer r.apply(context.Background(), bin, "-D")
	t0 := time.Now()
	c, err := net.DialTimeout("tcp", l.Addr().String(), 5*time.Second)
	if err != nil {
		return fmt.Errorf("delay probe: %w", err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	data, err := io.ReadAll(c)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		return fmt.Errorf("delay probe: %w", err)
	}
	if got := string(data); got != proxySource+"\n" {
		return fmt.Errorf("delay probe: the DNAT rule did not send the connection through the proxy (peer seen: %q)", got)
	}
	if d := time.Since(t0); d < 50*time.Millisecond {
		return fmt.Errorf("delay probe: answer after %v, not delayed by 50ms", d)
	}
	return nil
}
