package nodehttp

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/neogo/neo/neonet"
	"github.com/neogo/neo/proto"
)

// netMetrics implements [neonet.Observer] with Prometheus metrics labelled
// by packet type. The children of each code are looked up once and kept
// in a table indexed by code, so that an observed packet costs a few
// atomic adds and no map lookup nor allocation.
type netMetrics struct {
	sent, received           *prometheus.CounterVec
	sentBytes, receivedBytes *prometheus.CounterVec
	served                   *prometheus.HistogramVec
	links                    prometheus.Gauge
	linksOpened              prometheus.Counter
	peerLinks                [4]prometheus.Gauge // by peer type

	// byCode[answer][code&^ResponseMask], created at first use; codes
	// beyond the table share other.
	byCode [2][maxCode]atomic.Pointer[codeMetrics]
	mu     sync.Mutex // serialises the creation of entries
	other  atomic.Pointer[codeMetrics]
}

// maxCode bounds the codes with their own entry; NEO's codes are below.
const maxCode = 256

// codeMetrics are the children of one packet type.
type codeMetrics struct {
	sent, received           prometheus.Counter
	sentBytes, receivedBytes prometheus.Counter
	served                   prometheus.Observer
}

// servedBuckets (seconds) span a cached load (tens of µs) to a commit
// waiting for locks or a slow disk (seconds).
var servedBuckets = prometheus.ExponentialBuckets(50e-6, 4, 10)

func newNetMetrics(reg prometheus.Registerer) *netMetrics {
	m := &netMetrics{
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "neo_net_packets_sent_total", Help: "Packets sent, by packet type.",
		}, []string{"packet"}),
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "neo_net_packets_received_total", Help: "Packets received, by packet type.",
		}, []string{"packet"}),
		sentBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "neo_net_sent_bytes_total", Help: "Bytes of packets sent, by packet type.",
		}, []string{"packet"}),
		receivedBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "neo_net_received_bytes_total", Help: "Bytes of packets received, by packet type.",
		}, []string{"packet"}),
		served: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "neo_request_duration_seconds",
			Help:    "Time from the receipt of a peer's request to its answer being sent, by request type.",
			Buckets: servedBuckets,
		}, []string{"request"}),
	}
	m.links = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "neo_net_links", Help: "Links to other nodes open now.",
	})
	m.linksOpened = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "neo_net_links_opened_total", Help: "Links to other nodes established (accepted or dialed).",
	})
	peerLinks := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "neo_net_peer_links", Help: "Links to other nodes open now, by the peer's type (once identified).",
	}, []string{"peer"})
	for _, t := range nodeTypes {
		if int(t) < len(m.peerLinks) {
			m.peerLinks[t] = peerLinks.WithLabelValues(t.String())
		}
	}
	reg.MustRegister(m.sent, m.received, m.sentBytes, m.receivedBytes, m.served, m.links, m.linksOpened, peerLinks)
	return m
}

var _ neonet.PeerObserver = (*netMetrics)(nil)

func (m *netMetrics) LinkIdentified(peer proto.NodeType) {
	if int(peer) < len(m.peerLinks) {
		m.peerLinks[peer].Inc()
	}
}

func (m *netMetrics) IdentifiedLinkClosed(peer proto.NodeType) {
	if int(peer) < len(m.peerLinks) {
		m.peerLinks[peer].Dec()
	}
}

var _ neonet.Observer = (*netMetrics)(nil)

// of returns the children of code, creating them at its first packet.
func (m *netMetrics) of(code uint16) *codeMetrics {
	slot := &m.other
	if c := code &^ proto.ResponseMask; c < maxCode {
		slot = &m.byCode[code>>15][c]
	}
	if cm := slot.Load(); cm != nil {
		return cm
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if cm := slot.Load(); cm != nil {
		return cm
	}
	name := proto.MsgName(code)
	if slot == &m.other {
		name = "unknown"
	} else if _, ok := proto.MsgKind(code); !ok {
		name = "unknown"
	}
	cm := &codeMetrics{
		sent:          m.sent.WithLabelValues(name),
		received:      m.received.WithLabelValues(name),
		sentBytes:     m.sentBytes.WithLabelValues(name),
		receivedBytes: m.receivedBytes.WithLabelValues(name),
		served:        m.served.WithLabelValues(name),
	}
	slot.Store(cm)
	return cm
}

func (m *netMetrics) PacketSent(code uint16, size int) {
	cm := m.of(code)
	cm.sent.Inc()
	cm.sentBytes.Add(float64(size))
}

func (m *netMetrics) PacketReceived(code uint16, size int) {
	cm := m.of(code)
	cm.received.Inc()
	cm.receivedBytes.Add(float64(size))
}

func (m *netMetrics) RequestServed(code uint16, d time.Duration) {
	m.of(code).served.Observe(d.Seconds())
}

func (m *netMetrics) LinkOpened() {
	m.links.Inc()
	m.linksOpened.Inc()
}

func (m *netMetrics) LinkClosed() { m.links.Dec() }
