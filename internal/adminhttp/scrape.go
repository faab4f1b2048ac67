package adminhttp

import (
	"crypto/tls"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrapeTimeout bounds the read of one node's /metrics: the dashboard
// asks for progress every 2 s, and a dead node must not hold it.
const scrapeTimeout = time.Second

// ParsePeerTargets reads neoadmin's --http-peers: NAME=URL items, one or
// more per line, separated by commas or spaces; URL is a node's /metrics
// (http or https).
func ParsePeerTargets(lines []string) (map[string]string, error) {
	targets := map[string]string{}
	for _, line := range lines {
		for item := range strings.FieldsFuncSeq(line, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
			name, raw, ok := strings.Cut(item, "=")
			if !ok || name == "" {
				return nil, fmt.Errorf("peer %q: expected NAME=URL", item)
			}
			u, err := url.Parse(raw)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return nil, fmt.Errorf("peer %q: %q is not an http(s) URL", name, raw)
			}
			if _, dup := targets[name]; dup {
				return nil, fmt.Errorf("peer %q given twice", name)
			}
			targets[name] = raw
		}
	}
	return targets, nil
}

// ScrapePeers returns the Peers of a daemon admin, whose nodes are other
// processes: each node's metrics are read from its URL when the dashboard
// asks for progress. tc, if not nil, is the TLS setup for https URLs.
func ScrapePeers(targets map[string]string, tc *tls.Config) Peers {
	cl := &http.Client{Timeout: scrapeTimeout, Transport: &http.Transport{TLSClientConfig: tc}}
	gs := map[string]prometheus.Gatherer{}
	for name, u := range targets {
		gs[name] = scraper{cl: cl, url: u}
	}
	return func() map[string]prometheus.Gatherer { return gs }
}

// scraper is a node's /metrics read over HTTP, as a Gatherer.
type scraper struct {
	cl  *http.Client
	url string
}

func (s scraper) Gather() ([]*dto.MetricFamily, error) {
	resp, err := s.cl.Get(s.url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", s.url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	m, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", s.url, err)
	}
	mfs := make([]*dto.MetricFamily, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		mfs = append(mfs, m[k])
	}
	return mfs, nil
}
