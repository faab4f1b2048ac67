package admin

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/neogo/neo/neonet"
	"github.com/neogo/neo/proto"
)

// Config parameterises an admin node. Cluster and Masters are required;
// the zero value of every other field is a valid default.
type Config struct {
	// Cluster is the cluster name; every identification carries it.
	Cluster string
	// Masters are the addresses of the masters to look for the primary
	// among; NotPrimaryMaster redirections add the others.
	Masters []proto.Addr
	// DynamicMasterList, if set, is the path of a file (created if
	// missing) where the masters learned from the cluster are kept for the
	// next start, and whose masters complete Masters (neoadmin's -D).
	DynamicMasterList string
	// Bind is where neoctl connects (neoadmin's --bind). A zero port picks
	// a free one, see [Node.Addr]. The zero Addr means 127.0.0.1:0.
	Bind proto.Addr
	// NID is the node id to ask the master for at the first identification
	// (testing, --nid); 0 lets the master choose.
	NID proto.NodeID
	// TLS, if set, secures every connection (cluster.md §10.3).
	TLS *neonet.TLSConfig

	// Monitor configures health monitoring and e-mail notifications.
	Monitor MonitorConfig

	// ReconnectDelay is the least time between two connection attempts to
	// the same master (neoppod's CONNECT_LIMIT is 1 s, which made nodes
	// that asked a secondary during an election come back a second
	// late). Zero means 100 ms.
	ReconnectDelay time.Duration
	// Logger receives the node's events; nil discards them.
	Logger *slog.Logger
	// NetObserver, if set, is told of the traffic of every link (metrics,
	// the log file's packets).
	NetObserver neonet.Observer
	// FlushLog, if set, writes out the buffered records of the node's log
	// file: called on FlushLog (neoctl flush_log), on its own goroutine.
	FlushLog func()
}

// MonitorConfig is neoadmin's --monitor-* and --smtp* options (cluster.md
// §9.4).
type MonitorConfig struct {
	// Backups are the names of the backup clusters this admin monitors.
	// They are announced to the master in the identification's extra
	// "backup"; the admins of these clusters may then report to us.
	Backups []string
	// MaxLag is how late (seconds) a backup may be before it is a warning.
	MaxLag float64
	// Emails are the recipients of notifications; none disables them.
	Emails []string
	// SMTP is the mail server, "host[:port]"; empty means localhost.
	SMTP string
	// SMTPTLS requires STARTTLS.
	SMTPTLS bool
	// SMTPUser and SMTPPassword authenticate to the server when set.
	SMTPUser, SMTPPassword string
	// From is the sender address; empty means $EMAIL or user@hostname.
	From string
}

// Validate checks the configuration and names the faulty field.
func (c *Config) Validate() error {
	if c.Cluster == "" {
		return errors.New("admin: Config.Cluster: cluster name must be non-empty")
	}
	if len(c.Masters) == 0 && c.DynamicMasterList == "" {
		return errors.New("admin: Config.Masters: no master address")
	}
	for i, m := range c.Masters {
		if m.Host == "" {
			return fmt.Errorf("admin: Config.Masters[%d]: empty host", i)
		}
	}
	if c.Monitor.MaxLag < 0 {
		return fmt.Errorf("admin: Config.Monitor.MaxLag: negative (%v)", c.Monitor.MaxLag)
	}
	for _, b := range c.Monitor.Backups {
		if b == "" || b == c.Cluster {
			return fmt.Errorf("admin: Config.Monitor.Backups: invalid backup cluster name %q", b)
		}
	}
	return nil
}

// ParseAddr parses "host:port", "[ipv6]:port" or "host" (then defPort) and
// resolves the host once, keeping the first address, as neoppod does with
// configured addresses (cluster.md §9.1).
func ParseAddr(s string, defPort uint16) (proto.Addr, error) {
	host, port := s, ""
	if h, p, err := net.SplitHostPort(s); err == nil {
		host, port = h, p
	} else if len(s) > 1 && s[0] == '[' && s[len(s)-1] == ']' {
		host = s[1 : len(s)-1]
	}
	if host == "" {
		return proto.Addr{}, fmt.Errorf("address %q: empty host", s)
	}
	p := uint64(defPort)
	if port != "" {
		var err error
		if p, err = strconv.ParseUint(port, 10, 16); err != nil {
			return proto.Addr{}, fmt.Errorf("address %q: invalid port", s)
		}
	}
	ip := net.ParseIP(host)
	if ip == nil {
		ips, err := net.LookupIP(host)
		if err != nil {
			return proto.Addr{}, fmt.Errorf("address %q: %w", s, err)
		}
		if len(ips) == 0 {
			return proto.Addr{}, fmt.Errorf("address %q: host not found", s)
		}
		ip = ips[0]
	}
	if v4 := ip.To4(); v4 != nil {
		ip = v4
	}
	return proto.Addr{Host: ip.String(), Port: uint16(p)}, nil
}
