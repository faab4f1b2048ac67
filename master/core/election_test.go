package core

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/neogo/neo/proto"
)

// simNet runs several cores on a simulated network, without sockets:
// effects become events of the peer core, delivered in FIFO order. A dial
// to an address where no core runs fails at the next tick, as the
// driver's 1 s reconnect throttle would delay it.
type simNet struct {
	t      testing.TB
	clock  *fakeClock
	addrs  []proto.Addr
	cores  map[proto.Addr]*Machine
	q      []delivery
	parked []delivery
	links  map[end]end
	asks   map[askKey]asker
	accept ConnID
	msgID  uint32
	seen   map[proto.Addr][]Effect // every effect of each core
}

type end struct {
	addr proto.Addr
	conn ConnID
}

type askKey struct {
	to    end
	msgID uint32
}

type asker struct {
	from end
	tag  uint64
}

type delivery struct {
	to proto.Addr
	ev Event
}

func newSimNet(t testing.TB, ports ...uint16) *simNet {
	s := &simNet{t: t, clock: &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)},
		cores: map[proto.Addr]*Machine{}, links: map[end]end{}, asks: map[askKey]asker{}}
	for _, p := range ports {
		s.addrs = append(s.addrs, simAddr(p))
	}
	return s
}

func simAddr(port uint16) proto.Addr { return proto.Addr{Host: "127.0.0.1", Port: port} }

// start starts a master at port (its election key is the current time),
// configured with every master of the network.
func (s *simNet) start(port uint16) *Machine {
	s.t.Helper()
	return s.startWith(port, s.addrs)
}

// startWith starts a master configured with the given masters.
func (s *simNet) startWith(port uint16, masters []proto.Addr) *Machine {
	s.t.Helper()
	a := simAddr(port)
	if !slices.Contains(s.addrs, a) {
		s.addrs = append(s.addrs, a)
	}
	c, err := New(Config{Cluster: "test", Bind: a, Masters: masters, Partitions: 4, Now: s.clock.now})
	if err != nil {
		s.t.Fatal(err)
	}
	s.cores[a] = c
	s.q = append(s.q, delivery{a, Tick{}})
	return c
}

// kill stops a master at once: its peers see their links closed.
func (s *simNet) kill(port uint16) {
	a := simAddr(port)
	delete(s.cores, a)
	for e, p := range s.links {
		if e.addr == a {
			delete(s.links, e)
			delete(s.links, p)
			s.q = append(s.q, delivery{p.addr, Closed{p.conn}})
		}
	}
}

func (s *simNet) run() {
	s.t.Helper()
	for i := 0; len(s.q) > 0; i++ {
		if i > 100000 {
			s.t.Fatal("simulation does not settle")
		}
		d := s.q[0]
		s.q = s.q[1:]
		c := s.cores[d.to]
		if c == nil {
			continue
		}
		s.perform(d.to, c.Step(d.ev))
		if c.Exited() {
			s.kill(d.to.Port)
		}
	}
}

// tick delivers the parked dial failures and a Tick to every core, then
// runs until quiet.
func (s *simNet) tick() {
	s.q = append(s.q, s.parked...)
	s.parked = nil
	for _, a := range s.addrs {
		if s.cores[a] != nil {
			s.q = append(s.q, delivery{a, Tick{}})
		}
	}
	s.run()
}

// settle runs n ticks.
func (s *simNet) settle(n int) {
	s.run()
	for range n {
		s.tick()
	}
}

func (s *simNet) perform(a proto.Addr, effects []Effect) {
	if s.seen == nil {
		s.seen = map[proto.Addr][]Effect{}
	}
	s.seen[a] = append(s.seen[a], effects...)
	for _, e := range effects {
		me := end{a, e.Conn}
		switch e.Kind {
		case Dial:
			if s.cores[e.Addr] == nil {
				s.parked = append(s.parked, delivery{a, Closed{e.Conn}})
				continue
			}
			s.accept++
			p := end{e.Addr, s.accept}
			s.links[me], s.links[p] = p, me
		case Send, Ask:
			p, ok := s.links[me]
			if !ok {
				continue
			}
			s.msgID++
			if e.Kind == Ask {
				s.asks[askKey{p, s.msgID}] = asker{me, e.Tag}
			}
			s.q = append(s.q, delivery{p.addr, Recv{Conn: p.conn, MsgID: s.msgID, Msg: e.Msg}})
		case Reply:
			if _, ok := s.links[me]; !ok {
				continue
			}
			if r, ok := s.asks[askKey{me, e.MsgID}]; ok {
				delete(s.asks, askKey{me, e.MsgID})
				s.q = append(s.q, delivery{r.from.addr, Answer{Conn: r.from.conn, Tag: r.tag, Msg: e.Msg}})
			}
		case Abort:
			p, ok := s.links[me]
			if !ok {
				continue
			}
			delete(s.links, me)
			delete(s.links, p)
			s.q = append(s.q, delivery{a, Closed{e.Conn}}, delivery{p.addr, Closed{p.conn}})
		}
	}
}

// connect opens a link from outside (a storage, a client) to the core
// at port and sends it m; it returns the effects.
func (s *simNet) inject(port uint16, m proto.Msg) (ConnID, []Effect) {
	a := simAddr(port)
	s.accept++
	s.msgID++
	return s.accept, s.cores[a].Step(Recv{Conn: s.accept, MsgID: s.msgID, Msg: m})
}

// check verifies that exactly the master at primary plays primary and
// every other live master follows it, identified.
func (s *simNet) check(primary uint16) {
	s.t.Helper()
	pa := simAddr(primary)
	p := s.cores[pa]
	if p == nil || p.isSecondary() {
		s.t.Fatalf("%v is not primary:\n%s", pa, s.describe())
	}
	for a, c := range s.cores {
		if a == pa {
			continue
		}
		if !c.isSecondary() || c.sec.primary.Addr != pa || !c.sec.primary.identified() {
			s.t.Fatalf("%v does not follow %v:\n%s", a, pa, s.describe())
		}
		n := p.byAddr(a)
		if n == nil || !n.identified() || n.State != proto.NODE_RUNNING || n.NID != c.NID() {
			s.t.Fatalf("primary's record of %v: %+v:\n%s", a, n, s.describe())
		}
	}
	seen := map[proto.NodeID]proto.Addr{}
	for a, c := range s.cores {
		if o, dup := seen[c.NID()]; dup {
			s.t.Fatalf("%v and %v share %v", a, o, c.NID())
		}
		seen[c.NID()] = a
	}
}

func (s *simNet) describe() string {
	out := ""
	for _, a := range s.addrs {
		c := s.cores[a]
		switch {
		case c == nil:
			out += fmt.Sprintf("  %v: down\n", a)
		case c.isSecondary():
			out += fmt.Sprintf("  %v %v: secondary of %v (identified %v)\n", a, c.NID(), c.sec.primary.Addr, c.sec.primary.identified())
		default:
			out += fmt.Sprintf("  %v %v: primary, %v\n", a, c.NID(), c.ClusterState())
		}
	}
	return out
}

func TestElectionTwoMasters(t *testing.T) {
	for _, tc := range []struct {
		name   string
		order  []uint16 // start order: the first one wins
		before bool     // run the first alone for a while
	}{
		{"together", []uint16{10001, 10002}, false},
		{"together-reverse", []uint16{10002, 10001}, false},
		{"sequential", []uint16{10001, 10002}, true},
		{"sequential-reverse", []uint16{10002, 10001}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSimNet(t, 10001, 10002)
			s.start(tc.order[0])
			if tc.before {
				s.settle(3)
			}
			s.start(tc.order[1])
			s.settle(3)
			s.check(tc.order[0])
		})
	}
}

func TestElectionEqualKeysByAddress(t *testing.T) {
	// Two masters with the same start time: the smaller address wins.
	if !electionLess(1, simAddr(10001), 1, simAddr(10002)) || electionLess(1, simAddr(10002), 1, simAddr(10001)) {
		t.Fatal("port order")
	}
	if !electionLess(1, proto.Addr{Host: "127.0.0.1", Port: 9}, 1, proto.Addr{Host: "127.0.0.2", Port: 1}) {
		t.Fatal("host before port")
	}
	if !electionLess(1, simAddr(10002), 2, simAddr(10001)) {
		t.Fatal("time before address")
	}
}

func TestElectionThreeMasters(t *testing.T) {
	ports := []uint16{10001, 10002, 10003}
	perms := [][]int{{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}}
	for _, perm := range perms {
		for _, gap := range []int{0, 1, 3} {
			t.Run(fmt.Sprint(perm, gap), func(t *testing.T) {
				s := newSimNet(t, ports...)
				for _, i := range perm {
					s.start(ports[i])
					s.settle(gap)
				}
				s.settle(4)
				s.check(ports[perm[0]])
			})
		}
	}
}

func TestElectionFailover(t *testing.T) {
	s := newSimNet(t, 10001, 10002, 10003)
	s.start(10002)
	s.start(10001)
	s.start(10003)
	s.settle(3)
	s.check(10002)
	oldNID := s.cores[simAddr(10002)].NID()

	// The primary dies: the survivors elect one of them, which recovers.
	s.kill(10002)
	s.settle(5)
	var primary uint16
	for a, c := range s.cores {
		if !c.isSecondary() {
			primary = a.Port
		}
	}
	if primary == 0 {
		t.Fatalf("no new primary:\n%s", s.describe())
	}
	s.check(primary)
	np := s.cores[simAddr(primary)]
	if np.ClusterState() != proto.RECOVERING || np.NID() == oldNID || np.startupAllowed {
		t.Fatalf("new primary %v: state %v, startup allowed %v", np.NID(), np.ClusterState(), np.startupAllowed)
	}
	if n := np.byAddr(simAddr(10002)); n == nil || n.State != proto.DOWN {
		t.Fatalf("old primary record: %+v", n)
	}

	// The old primary comes back: it started last, so it follows.
	s.start(10002)
	s.settle(3)
	s.check(primary)

	// Then the new primary dies too; two masters left.
	s.kill(primary)
	s.settle(5)
	for a, c := range s.cores {
		if !c.isSecondary() {
			s.check(a.Port)
			return
		}
	}
	t.Fatalf("no primary after the second failure:\n%s", s.describe())
}

func TestElectionLoneSecondaryBecomesPrimary(t *testing.T) {
	s := newSimNet(t, 10001, 10002)
	s.start(10001)
	s.start(10002)
	s.settle(2)
	s.check(10001)
	s.kill(10001)
	s.settle(2)
	c := s.cores[simAddr(10002)]
	if c.isSecondary() || c.ClusterState() != proto.RECOVERING {
		t.Fatalf("after the primary's death:\n%s", s.describe())
	}
	// It keeps trying the dead master, once per tick.
	dials := 0
	for range 3 {
		s.tick()
		dials += len(s.parked)
	}
	if dials == 0 {
		t.Fatal("the candidate stopped dialing the other master")
	}
}

func TestSecondaryRedirects(t *testing.T) {
	s := newSimNet(t, 10001, 10002, 10003)
	s.start(10001)
	s.start(10002)
	s.settle(2)
	s.check(10001)
	// A storage identifying to the secondary is told where the primary is.
	cn, effects := s.inject(10002, &proto.RequestIdentification{NodeType: proto.STORAGE, Addr: simAddr(20000), ClusterName: "test", Extra: proto.Dict{}})
	npm := mustFind[*proto.NotPrimaryMaster](t, effects, cn)
	if !npm.Primary.Valid || npm.KnownMasters[npm.Primary.V] != simAddr(10001) || len(npm.KnownMasters) != 3 {
		t.Fatalf("NotPrimaryMaster = %+v", npm)
	}
	if effects[len(effects)-1].Kind != Abort {
		t.Fatalf("not aborted: %s", dump(effects))
	}
	// The primary itself asking: no index (it is the one believed primary).
	cn, effects = s.inject(10002, &proto.RequestIdentification{NodeType: proto.MASTER, Addr: simAddr(10001), ClusterName: "test", Extra: proto.Dict{}})
	if npm := mustFind[*proto.NotPrimaryMaster](t, effects, cn); npm.Primary.Valid {
		t.Fatalf("NotPrimaryMaster to the primary = %+v", npm)
	}
	// Wrong cluster.
	cn, effects = s.inject(10002, &proto.RequestIdentification{NodeType: proto.CLIENT, ClusterName: "other"})
	if e := mustFind[*proto.Error](t, effects, cn); e.Code != proto.PROTOCOL_ERROR {
		t.Fatalf("wrong cluster: %v", e)
	}
}

func TestSecondaryExits(t *testing.T) {
	t.Run("kill", func(t *testing.T) {
		s := newSimNet(t, 10001, 10002)
		s.start(10001)
		sec := s.start(10002)
		s.settle(2)
		s.check(10001)
		// neoctl kill of the secondary, through an admin of the primary.
		a, _ := s.inject(10001, &proto.RequestIdentification{NodeType: proto.ADMIN, Addr: simAddr(9999), ClusterName: "test", Extra: proto.Dict{}})
		s.msgID++
		s.perform(simAddr(10001), s.cores[simAddr(10001)].Step(Recv{Conn: a, MsgID: s.msgID, Msg: &proto.SetNodeState{NID: sec.NID(), State: proto.DOWN}}))
		s.run()
		if !sec.Exited() {
			t.Fatalf("secondary still running:\n%s", s.describe())
		}
		// Killing the primary is refused.
		s.msgID++
		eff := s.cores[simAddr(10001)].Step(Recv{Conn: a, MsgID: s.msgID, Msg: &proto.SetNodeState{NID: s.cores[simAddr(10001)].NID(), State: proto.DOWN}})
		if e := mustFind[*proto.Error](t, eff, a); e.Code != proto.DENIED {
			t.Fatalf("kill primary: %v", e)
		}
	})
	t.Run("stopping", func(t *testing.T) {
		s := newSimNet(t, 10001, 10002)
		s.start(10001)
		sec := s.start(10002)
		s.settle(2)
		a, _ := s.inject(10001, &proto.RequestIdentification{NodeType: proto.ADMIN, Addr: simAddr(9999), ClusterName: "test", Extra: proto.Dict{}})
		s.msgID++
		s.perform(simAddr(10001), s.cores[simAddr(10001)].Step(Recv{Conn: a, MsgID: s.msgID, Msg: &proto.SetClusterState{State: proto.STOPPING}}))
		s.run()
		if !sec.Exited() {
			t.Fatalf("secondary still running:\n%s", s.describe())
		}
	})
}

func TestElectionAnswerOvertaken(t *testing.T) {
	// The driver may deliver the primary's first NotifyNodeInformation
	// before the AcceptIdentification: the core holds it.
	h := newHarness(t, func(c *Config) {
		c.Masters = []proto.Addr{simAddr(10000), simAddr(10001)}
	})
	effects := h.step(Tick{})
	var dial, ask Effect
	for _, e := range effects {
		switch e.Kind {
		case Dial:
			dial = e
		case Ask:
			ask = e
		}
	}
	if dial.Addr != simAddr(10001) || ask.Conn != dial.Conn {
		t.Fatalf("no election dial: %s", dump(effects))
	}
	req := ask.Msg.(*proto.RequestIdentification)
	if !req.IDTimestamp.Valid || req.IDTimestamp.V != h.c.primaryTime {
		t.Fatalf("election key %+v, want %v", req.IDTimestamp, h.c.primaryTime)
	}
	m1, m2 := proto.NewNodeID(proto.MASTER, 1), proto.NewNodeID(proto.MASTER, 2)
	h.step(Recv{Conn: dial.Conn, MsgID: 1, Msg: &proto.NotifyNodeInformation{Timestamp: 1, NodeList: []proto.NodeInfo{
		{Type: proto.MASTER, Addr: simAddr(10000), NID: m2, State: proto.NODE_RUNNING},
		{Type: proto.MASTER, Addr: simAddr(10001), NID: m1, State: proto.NODE_RUNNING}}}})
	if h.c.isSecondary() {
		t.Fatal("yielded before the answer")
	}
	h.step(Answer{Conn: dial.Conn, Tag: ask.Tag, Msg: &proto.AcceptIdentification{NodeType: proto.MASTER, MyNID: m1, YourNID: m2}})
	if !h.c.isSecondary() || h.c.NID() != m2 || h.c.sec.primary.NID != m1 || h.c.sec.primary.State != proto.NODE_RUNNING {
		t.Fatalf("secondary %v nid %v secondary state %+v", h.c.isSecondary(), h.c.NID(), h.c.sec)
	}
	// Told DOWN: exit.
	h.step(Recv{Conn: dial.Conn, MsgID: 2, Msg: &proto.NotifyNodeInformation{Timestamp: 2, NodeList: []proto.NodeInfo{
		{Type: proto.MASTER, Addr: simAddr(10000), NID: m2, State: proto.DOWN}}}})
	if !h.c.Exited() {
		t.Fatal("secondary told DOWN did not exit")
	}
}

func TestElectionUnknownMaster(t *testing.T) {
	// Masters 1 and 2 do not know master 3, which knows them: it is
	// accepted as a secondary, and everyone learns its address.
	s := newSimNet(t, 10001, 10002)
	s.start(10001)
	s.start(10002)
	s.settle(2)
	s.startWith(10003, []proto.Addr{simAddr(10001), simAddr(10002), simAddr(10003)})
	s.settle(3)
	s.check(10001)
	if n := s.cores[simAddr(10002)].byAddr(simAddr(10003)); n == nil || n.State != proto.NODE_RUNNING {
		t.Fatalf("secondary's record of the new master: %+v", n)
	}

	// Told by a secondary who the primary is, a master that knows only
	// that secondary finds the primary.
	s.startWith(10004, []proto.Addr{simAddr(10002)})
	s.settle(3)
	s.check(10001)
}

func (c *Machine) isSecondary() bool { return c.part == partSecondary }
