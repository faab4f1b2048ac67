package proto

import (
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
)

// A reflection-driven codec following the same contract as the generated
// one. It serves as an independent check of the generator's output and as
// the baseline of the benchmarks that justify generating code (see
// BenchmarkCodec).

var (
	reflTid     = reflect.TypeFor[Tid]()
	reflOid     = reflect.TypeFor[Oid]()
	reflPTid    = reflect.TypeFor[PTid]()
	reflNodeID  = reflect.TypeFor[NodeID]()
	reflAddr    = reflect.TypeFor[Addr]()
	reflDict    = reflect.TypeFor[Dict]()
	reflErrCode = reflect.TypeFor[ErrorCode]()
	reflEnums   = map[reflect.Type]struct {
		ext   int8
		limit int
	}{
		reflect.TypeFor[CellState]():    {ExtCellStates, len(cellStateNames)},
		reflect.TypeFor[ClusterState](): {ExtClusterStates, len(clusterStateNames)},
		reflect.TypeFor[NodeState]():    {ExtNodeStates, len(nodeStateNames)},
		reflect.TypeFor[NodeType]():     {ExtNodeTypes, len(nodeTypeNames)},
	}
)

func isOpt(t reflect.Type) bool {
	return t.Kind() == reflect.Struct && strings.HasPrefix(t.Name(), "Opt[")
}

func reflEncode(b []byte, v reflect.Value, tag string) []byte {
	t := v.Type()
	switch t {
	case reflTid:
		return appendTid(b, Tid(v.Uint()))
	case reflOid:
		return appendOid(b, Oid(v.Uint()))
	case reflPTid:
		return appendPTid(b, PTid(v.Uint()))
	case reflNodeID:
		return appendNodeID(b, NodeID(v.Int()))
	case reflAddr:
		return appendAddr(b, v.Interface().(Addr))
	case reflDict:
		return appendDict(b, v.Interface().(Dict))
	case reflErrCode:
		return appendUint(b, v.Uint())
	}
	if e, ok := reflEnums[t]; ok {
		return appendEnum(b, byte(e.ext), uint8(v.Uint()))
	}
	if isOpt(t) {
		if !v.FieldByName("Valid").Bool() {
			return appendNil(b)
		}
		return reflEncode(b, v.FieldByName("V"), "")
	}
	switch t.Kind() {
	case reflect.Struct:
		b = appendArrayHeader(b, t.NumField())
		for i := range t.NumField() {
			b = reflEncode(b, v.Field(i), t.Field(i).Tag.Get("neo"))
		}
		return b
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return appendBin(b, v.Bytes())
		}
		if tag == "map" {
			b = appendMapHeader(b, v.Len())
			for i := range v.Len() {
				e := v.Index(i)
				b = reflEncode(b, e.Field(0), "")
				if e.NumField() > 2 {
					b = appendArrayHeader(b, e.NumField()-1)
				}
				for j := 1; j < e.NumField(); j++ {
					b = reflEncode(b, e.Field(j), "")
				}
			}
			return b
		}
		b = appendArrayHeader(b, v.Len())
		for i := range v.Len() {
			b = reflEncode(b, v.Index(i), "")
		}
		return b
	case reflect.Bool:
		return appendBool(b, v.Bool())
	case reflect.Float64:
		return appendFloat(b, v.Float())
	case reflect.String:
		return appendBinString(b, v.String())
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return appendUint(b, v.Uint())
	case reflect.Int32, reflect.Int64:
		return appendInt(b, v.Int())
	}
	panic(fmt.Sprintf("reflEncode: unsupported type %s", t))
}

func reflDecode(d *decoder, v reflect.Value, tag string) {
	t := v.Type()
	switch t {
	case reflTid:
		v.SetUint(uint64(d.tid()))
		return
	case reflOid:
		v.SetUint(uint64(d.oid()))
		return
	case reflPTid:
		v.SetUint(uint64(d.ptid()))
		return
	case reflNodeID:
		v.SetInt(int64(d.nodeID()))
		return
	case reflAddr:
		v.Set(reflect.ValueOf(d.addr()))
		return
	case reflDict:
		v.Set(reflect.ValueOf(d.dict()))
		return
	case reflErrCode:
		v.SetUint(uint64(d.errorCode()))
		return
	}
	if e, ok := reflEnums[t]; ok {
		v.SetUint(uint64(d.enum(e.ext, e.limit, t.Name())))
		return
	}
	if isOpt(t) {
		v.SetZero()
		if !d.tryNil() {
			v.FieldByName("Valid").SetBool(true)
			reflDecode(d, v.FieldByName("V"), "")
		}
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		d.tuple(t.NumField())
		for i := range t.NumField() {
			reflDecode(d, v.Field(i), t.Field(i).Tag.Get("neo"))
		}
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			v.SetBytes(d.binBytes())
			return
		}
		var n int
		if tag == "map" {
			n = d.mapHeader(2)
		} else {
			n = d.arrayHeader(1)
		}
		v.SetZero()
		if n > 0 {
			v.Set(reflect.MakeSlice(t, n, n))
		}
		for i := 0; i < n && d.err == nil; i++ {
			e := v.Index(i)
			if tag != "map" {
				reflDecode(d, e, "")
				continue
			}
			reflDecode(d, e.Field(0), "")
			if e.NumField() > 2 {
				d.tuple(e.NumField() - 1)
			}
			for j := 1; j < e.NumField(); j++ {
				reflDecode(d, e.Field(j), "")
			}
		}
	case reflect.Bool:
		v.SetBool(d.bool())
	case reflect.Float64:
		v.SetFloat(d.float())
	case reflect.String:
		v.SetString(d.string())
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(d.uint(math.MaxUint64 >> (64 - t.Bits())))
	case reflect.Int32, reflect.Int64:
		v.SetInt(d.int(-1<<(t.Bits()-1), 1<<(t.Bits()-1)-1))
	default:
		panic(fmt.Sprintf("reflDecode: unsupported type %s", t))
	}
}

// reflDecodeMsg decodes the args of m's type by reflection.
func reflDecodeMsg(m Msg, data []byte) (int, error) {
	d := decoder{b: data}
	reflDecode(&d, reflect.ValueOf(m).Elem(), "")
	return d.i, d.err
}

// TestGeneratedMatchesReflection checks the generated codec against the
// reflection codec on every sample.
func TestGeneratedMatchesReflection(t *testing.T) {
	for _, m := range sampleMsgs() {
		gen := m.NEOMsgEncode(nil)
		refl := reflEncode(nil, reflect.ValueOf(m).Elem(), "")
		if string(gen) != string(refl) {
			t.Errorf("%T: generated % x\nreflection % x", m, gen, refl)
			continue
		}
		m2 := reflect.New(reflect.TypeOf(m).Elem()).Interface().(Msg)
		if n, err := reflDecodeMsg(m2, gen); err != nil || n != len(gen) {
			t.Errorf("%T: reflection decode: %d, %v", m, n, err)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Errorf("%T: reflection decode: %#v", m, m2)
		}
	}
}
