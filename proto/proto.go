package proto

//go:generate go run ./internal/protogen

// Opt is an optional value: nil on the wire when Valid is false. The zero
// Opt is nil. It is used for optional values that have no natural sentinel
// (see the package documentation for the ones that do).
type Opt[T any] struct {
	V     T
	Valid bool
}

// Some returns a present optional value.
func Some[T any](v T) Opt[T] { return Opt[T]{V: v, Valid: true} }

// Get returns the value and whether it is present.
func (o Opt[T]) Get() (T, bool) { return o.V, o.Valid }

// NodeInfo is one node entry (protocol.md §4.5).
type NodeInfo struct {
	Type        NodeType
	Addr        Addr // zero: no listening address
	NID         NodeID
	State       NodeState
	IDTimestamp Opt[float64] // bit-exact; nil if the node never identified
}

// Error is the Error packet (code 0x8000): the answer of any request, the
// positive (ACK) or negative answer of requests answered by Error. It
// implements the error interface (see errors.go).
//
//neo:proto error
type Error struct {
	Code    ErrorCode
	Message string
}

// RequestIdentification must be the first packet on every connection
// except neoctl→admin.
//
//neo:proto ask
type RequestIdentification struct {
	NodeType    NodeType
	NID         NodeID       // 0: none yet
	Addr        Addr         // zero: no listening address
	ClusterName string       //
	IDTimestamp Opt[float64] // bit-exact; election key between masters
	Extra       Dict         `neo:"map"` // keys read_only, backup, devpath, new_nid
}

// AcceptIdentification answers RequestIdentification.
//
//neo:proto answer
type AcceptIdentification struct {
	NodeType NodeType
	MyNID    NodeID // 0 for anonymous links
	YourNID  NodeID // 0 for anonymous links
}

// Ping is a network barrier, answered by Pong at any time.
//
//neo:proto ask
type Ping struct{}

// Pong answers Ping.
//
//neo:proto answer
type Pong struct{}

// NotifyNodeInformation tells about changed nodes; its timestamp strictly
// increases on each connection.
//
//neo:proto notify
type NotifyNodeInformation struct {
	Timestamp float64 // bit-exact
	NodeList  []NodeInfo
}
