package proto

import "math"

// Value is a free-form msgpack value, used where neoppod sends arbitrary
// data: the values of RequestIdentification's extra and of
// NotifyMonitorInformation. Its dynamic type is one of:
//
//	nil                       msgpack nil
//	bool                      true/false
//	int64                     any integer that fits (uint64 above MaxInt64)
//	uint64
//	float64                   float64 (a float32 on the wire decodes to float64)
//	[]byte                    bin (decoding aliases the frame)
//	Str                       str (Python never sends it; kept for round-trip)
//	[]Value                   array
//	Map                       map, in wire order
//	CellState, ClusterState,  enum members (ext types 0, 1, 2, 3, 4)
//	ErrorCode, NodeState,
//	NodeType
//
// For convenience the encoder also accepts int, int32, uint32, uint8 and
// string (sent as bin). Values of any other type are encoded as nil.
type Value = any

// Str is a msgpack str inside a [Value]. Python sends bin for every byte
// string (a str would be decoded as text on its side), so Str exists only to
// re-encode exactly what was received.
type Str string

// Map is a msgpack map in wire order. Keys are Values too: bin for most
// maps, enum members for pt_summary in NotifyMonitorInformation.
type Map []MapItem

// MapItem is one key/value pair of a [Map].
type MapItem struct {
	Key   Value
	Value Value
}

// Dict is a map with bin keys and free-form values, kept in wire order so
// that decode→encode reproduces the bytes Python sent.
type Dict []DictItem

// DictItem is one entry of a [Dict].
type DictItem struct {
	Key   string
	Value Value
}

// Get returns the value of the first entry with the given key.
func (d Dict) Get(key string) (Value, bool) {
	for _, it := range d {
		if it.Key == key {
			return it.Value, true
		}
	}
	return nil, false
}

func appendValue(b []byte, v Value) []byte {
	switch v := v.(type) {
	case nil:
		return appendNil(b)
	case bool:
		return appendBool(b, v)
	case int64:
		return appendInt(b, v)
	case int:
		return appendInt(b, int64(v))
	case int32:
		return appendInt(b, int64(v))
	case uint64:
		return appendUint(b, v)
	case uint32:
		return appendUint(b, uint64(v))
	case uint8:
		return appendUint(b, uint64(v))
	case float64:
		return appendFloat(b, v)
	case []byte:
		return appendBin(b, v)
	case string:
		return appendBinString(b, v)
	case Str:
		return appendStr(b, string(v))
	case []Value:
		b = appendArrayHeader(b, len(v))
		for _, e := range v {
			b = appendValue(b, e)
		}
		return b
	case Map:
		b = appendMapHeader(b, len(v))
		for _, it := range v {
			b = appendValue(b, it.Key)
			b = appendValue(b, it.Value)
		}
		return b
	case CellState:
		return appendEnum(b, ExtCellStates, uint8(v))
	case ClusterState:
		return appendEnum(b, ExtClusterStates, uint8(v))
	case ErrorCode:
		return appendEnum(b, ExtErrorCodes, uint8(v))
	case NodeState:
		return appendEnum(b, ExtNodeStates, uint8(v))
	case NodeType:
		return appendEnum(b, ExtNodeTypes, uint8(v))
	}
	return appendNil(b)
}

func appendDict(b []byte, d Dict) []byte {
	b = appendMapHeader(b, len(d))
	for _, it := range d {
		b = appendBinString(b, it.Key)
		b = appendValue(b, it.Value)
	}
	return b
}

func (d *decoder) dict() Dict {
	n := d.mapHeader(2)
	if d.err != nil {
		return nil
	}
	m := make(Dict, n)
	for i := range m {
		m[i].Key = d.string()
		m[i].Value = d.value(0)
		if d.err != nil {
			return nil
		}
	}
	return m
}

// value decodes any msgpack object into a [Value], nesting at most
// maxValueDepth containers.
func (d *decoder) value(depth int) Value {
	c, ok := d.peek()
	if !ok {
		return nil
	}
	if depth > maxValueDepth {
		d.fail("at byte %d: values nested deeper than %d", d.i, maxValueDepth)
		return nil
	}
	switch {
	case c < 0x80 || c >= 0xe0,
		c >= mpUint8 && c <= mpInt64:
		v, neg := d.integer()
		if !neg && v > math.MaxInt64 {
			return v
		}
		return int64(v)
	case c <= 0x8f || c == mpMap16 || c == mpMap32:
		n := d.mapHeader(2)
		if d.err != nil {
			return nil
		}
		m := make(Map, n)
		for i := range m {
			m[i].Key = d.value(depth + 1)
			m[i].Value = d.value(depth + 1)
			if d.err != nil {
				return nil
			}
		}
		return m
	case c <= 0x9f || c == mpArray16 || c == mpArray32:
		n := d.arrayHeader(1)
		if d.err != nil {
			return nil
		}
		a := make([]Value, n)
		for i := range a {
			a[i] = d.value(depth + 1)
			if d.err != nil {
				return nil
			}
		}
		return a
	case c <= 0xbf || c == mpStr8 || c == mpStr16 || c == mpStr32:
		return Str(d.bytes())
	case c == mpBin8 || c == mpBin16 || c == mpBin32:
		return d.bytes()
	case c == mpNil:
		d.i++
		return nil
	case c == mpTrue || c == mpFalse:
		return d.bool()
	case c == mpFloat32 || c == mpFloat64:
		return d.float()
	}
	at := d.i
	typ, payload := d.extHeader()
	if d.err != nil {
		return nil
	}
	limits := [...]int{len(cellStateNames), len(clusterStateNames), len(errorCodeNames), len(nodeStateNames), len(nodeTypeNames)}
	if typ < 0 || int(typ) >= len(limits) {
		d.fail("at byte %d: unknown ext type %d", at, typ)
		return nil
	}
	v, ok := enumPayload(payload, limits[typ])
	if !ok {
		d.fail("at byte %d: invalid value of ext type %d (payload % x)", at, typ, payload)
		return nil
	}
	switch typ {
	case ExtCellStates:
		return CellState(v)
	case ExtClusterStates:
		return ClusterState(v)
	case ExtErrorCodes:
		return ErrorCode(v)
	case ExtNodeStates:
		return NodeState(v)
	default:
		return NodeType(v)
	}
}
