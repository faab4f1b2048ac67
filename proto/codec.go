package proto

import "math"

// Field codecs shared by the generated code (zproto_codec.go). The types
// with a nil sentinel map it here, in both directions, whether or not the
// argument is optional: Python never sends the sentinel values themselves.

func appendTid(b []byte, t Tid) []byte {
	if t == InvalidTid {
		return appendNil(b)
	}
	return appendP64(b, uint64(t))
}

func appendOid(b []byte, o Oid) []byte {
	if o == InvalidOid {
		return appendNil(b)
	}
	return appendP64(b, uint64(o))
}

func (d *decoder) tid() Tid { return Tid(d.p64()) }
func (d *decoder) oid() Oid { return Oid(d.p64()) }

func appendNodeID(b []byte, id NodeID) []byte {
	if id == 0 {
		return appendNil(b)
	}
	return appendInt(b, int64(id))
}

func (d *decoder) nodeID() NodeID {
	if d.tryNil() {
		return 0
	}
	return NodeID(d.int(math.MinInt32, math.MaxInt32))
}

func appendPTid(b []byte, p PTid) []byte {
	if p == 0 {
		return appendNil(b)
	}
	return appendUint(b, uint64(p))
}

func (d *decoder) ptid() PTid {
	if d.tryNil() {
		return 0
	}
	return PTid(d.uint(math.MaxUint64))
}

func appendAddr(b []byte, a Addr) []byte {
	if a.IsZero() {
		return appendNil(b)
	}
	b = append(b, 0x92)
	b = appendBinString(b, a.Host)
	return appendUint(b, uint64(a.Port))
}

func (d *decoder) addr() Addr {
	if d.tryNil() {
		return Addr{}
	}
	d.tuple(2)
	host := d.string()
	port := uint16(d.uint(math.MaxUint16))
	return Addr{Host: host, Port: port}
}

func (d *decoder) optFloat() Opt[float64] {
	if d.tryNil() {
		return Opt[float64]{}
	}
	return Some(d.float())
}

func appendOptFloat(b []byte, o Opt[float64]) []byte {
	if !o.Valid {
		return appendNil(b)
	}
	return appendFloat(b, o.V)
}

func (d *decoder) nodeType() NodeType {
	return NodeType(d.enum(ExtNodeTypes, len(nodeTypeNames), "NodeType"))
}

func (d *decoder) nodeState() NodeState {
	return NodeState(d.enum(ExtNodeStates, len(nodeStateNames), "NodeState"))
}

func (d *decoder) cellState() CellState {
	return CellState(d.enum(ExtCellStates, len(cellStateNames), "CellState"))
}

func (d *decoder) clusterState() ClusterState {
	return ClusterState(d.enum(ExtClusterStates, len(clusterStateNames), "ClusterState"))
}

func (d *decoder) errorCode() ErrorCode {
	at := d.i
	v := d.uint(math.MaxUint8)
	if d.err == nil && !ErrorCode(v).Valid() {
		d.fail("at byte %d: unknown error code %d", at, v)
	}
	return ErrorCode(v)
}

// argsError wraps the decoder error of argument arg of packet name.
func argsError(name string, arg int, err error) error {
	return &DecodeError{Msg: name, Arg: arg, Err: err}
}

// slabLen is the length of a slab to allocate for the inner slices of a
// slice of slices, when the current inner slice has n elements, rowsLeft
// slices remain (this one included) and remaining bytes are left to decode,
// each element taking at least minSize bytes: enough for rowsLeft slices
// like this one, but never more elements than the bytes can hold.
func slabLen(n, rowsLeft, remaining, minSize int) int {
	limit := n + remaining/minSize
	if rowsLeft > limit/n {
		return limit
	}
	return max(n, n*rowsLeft)
}
