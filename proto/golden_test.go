package proto_test

// Golden vectors: packets encoded by neoppod itself (scripts/gen-golden,
// run with neoppod's Python), compared with our codec three ways: decoding
// gives the right packet and id; the decoded struct, walked by reflection
// independently of the codec, equals the argument tree neoppod encoded; and
// re-encoding gives back neoppod's bytes exactly.
//
// Regenerate the vectors with:
//
//	. /work/shared/peers/env.sh && $PY scripts/gen-golden

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/neogo/neo/proto"
)

// goldenVector is one line of testdata/golden.jsonl.
type goldenVector struct {
	Name string          `json:"name"`
	Code uint16          `json:"code"`
	ID   uint32          `json:"id"`
	Desc string          `json:"desc"`
	Hex  string          `json:"hex"`
	Args json.RawMessage `json:"args"`
	line int
}

func (v *goldenVector) String() string {
	s := fmt.Sprintf("golden.jsonl:%d %s", v.line, v.Name)
	if v.Desc != "" {
		s += " (" + v.Desc + ")"
	}
	return s
}

func loadGolden(t testing.TB) []*goldenVector {
	t.Helper()
	f, err := os.Open("testdata/golden.jsonl")
	if err != nil {
		t.Fatalf("golden vectors: %v (regenerate with scripts/gen-golden)", err)
	}
	defer f.Close()
	var vs []*goldenVector
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 16<<20)
	for n := 1; sc.Scan(); n++ {
		v := &goldenVector{line: n}
		if err := json.Unmarshal(sc.Bytes(), v); err != nil {
			t.Fatalf("golden.jsonl:%d: %v", n, err)
		}
		vs = append(vs, v)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("golden.jsonl: %v", err)
	}
	if len(vs) == 0 {
		t.Fatal("golden.jsonl: no vectors")
	}
	return vs
}

// goldenRegistry is testdata/registry.json: neoppod's code table.
type goldenRegistry struct {
	ProtocolVersion int    `json:"protocol_version"`
	ResponseMask    uint16 `json:"response_mask"`
	PacketTypes     int    `json:"packet_types"`
	Codes           []struct {
		Code       uint16 `json:"code"`
		Name       string `json:"name"`
		Kind       string `json:"kind"` // E, R, RE, N
		WireCode   uint16 `json:"wire_code"`
		Answer     string `json:"answer"`
		AnswerCode uint16 `json:"answer_code"`
	} `json:"codes"`
}

func loadRegistry(t testing.TB) *goldenRegistry {
	t.Helper()
	data, err := os.ReadFile("testdata/registry.json")
	if err != nil {
		t.Fatalf("registry: %v", err)
	}
	var r goldenRegistry
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatalf("registry.json: %v", err)
	}
	return &r
}

// packetTypes returns every packet type of neoppod's registry: wire code →
// name (111 entries).
func (r *goldenRegistry) packetTypes() map[uint16]string {
	m := make(map[uint16]string)
	for _, c := range r.Codes {
		switch c.Kind {
		case "E":
			m[c.WireCode] = c.Name
		case "R":
			m[c.Code] = c.Name
			m[c.AnswerCode] = c.Answer
		default:
			m[c.Code] = c.Name
		}
	}
	return m
}

func TestGolden(t *testing.T) {
	for _, v := range loadGolden(t) {
		t.Run(fmt.Sprintf("%03d_%s", v.line, v.Name), func(t *testing.T) {
			frame, err := hex.DecodeString(v.Hex)
			if err != nil {
				t.Fatalf("%v: bad hex: %v", v, err)
			}
			// (a) the right packet type and id.
			id, m, err := proto.DecodePacket(frame)
			if err != nil {
				t.Fatalf("%v: DecodePacket: %v", v, err)
			}
			if id != v.ID {
				t.Errorf("%v: id = %d, want %d", v, id, v.ID)
			}
			if got := m.NEOMsgCode(); got != v.Code {
				t.Errorf("%v: code = 0x%04x, want 0x%04x", v, got, v.Code)
			}
			if got := proto.MsgName(m.NEOMsgCode()); got != v.Name {
				t.Errorf("%v: MsgName = %q, want %q", v, got, v.Name)
			}
			if got := reflect.TypeOf(m).Elem().Name(); got != v.Name {
				t.Errorf("%v: decoded into %s, want %s", v, got, v.Name)
			}

			// (b) the decoded values, independently of the bytes.
			var want any
			dec := json.NewDecoder(bytes.NewReader(v.Args))
			dec.UseNumber()
			if err := dec.Decode(&want); err != nil {
				t.Fatalf("%v: args: %v", v, err)
			}
			got, err := argsTree(m)
			if err != nil {
				t.Errorf("%v: %v", v, err)
			} else if path, diff := treeDiff(got, normTree(want), "args"); diff != "" {
				t.Errorf("%v: decoded value differs at %s: %s", v, path, diff)
			}

			// (c) re-encoding gives neoppod's bytes.
			enc := proto.AppendPacket(nil, id, m)
			if !bytes.Equal(enc, frame) {
				t.Errorf("%v: re-encoding differs:\n%s", v, bytesDiff(enc, frame))
			}
			// Appending must not disturb what is already in the buffer.
			prefix := []byte{0xde, 0xad}
			if enc := proto.AppendPacket(prefix, id, m); !bytes.Equal(enc[:2], prefix) || !bytes.Equal(enc[2:], frame) {
				t.Errorf("%v: AppendPacket to a non-empty buffer differs", v)
			}
		})
	}
}

// TestGoldenCoverage fails unless every packet type of neoppod's registry
// (every code, every answer: 111) has at least one vector, and every vector
// names a registered type with its right code.
func TestGoldenCoverage(t *testing.T) {
	reg := loadRegistry(t)
	types := reg.packetTypes()
	if len(types) != 111 || reg.PacketTypes != 111 {
		t.Fatalf("registry.json: %d packet types (file says %d), want 111", len(types), reg.PacketTypes)
	}
	count := make(map[uint16]int)
	for _, v := range loadGolden(t) {
		name, ok := types[v.Code]
		if !ok || name != v.Name {
			t.Errorf("%v: code 0x%04x is %q in neoppod's registry", v, v.Code, name)
		}
		count[v.Code]++
	}
	var missing []string
	for code, name := range types {
		if count[code] == 0 {
			missing = append(missing, fmt.Sprintf("%s(0x%04x)", name, code))
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("%d packet types without golden vector: %s", len(missing), strings.Join(missing, " "))
	}
}

// TestGoldenRegistry compares our code table with neoppod's.
func TestGoldenRegistry(t *testing.T) {
	reg := loadRegistry(t)
	if reg.ProtocolVersion != proto.Version {
		t.Errorf("protocol version: neoppod %d, ours %d", reg.ProtocolVersion, proto.Version)
	}
	if reg.ResponseMask != proto.ResponseMask {
		t.Errorf("response mask: neoppod 0x%x, ours 0x%x", reg.ResponseMask, proto.ResponseMask)
	}
	if len(reg.Codes) != 74 {
		t.Errorf("registry.json: %d codes, want 74", len(reg.Codes))
	}
	checkCode := func(code uint16, name string, kind proto.Kind) {
		t.Helper()
		if got := proto.MsgName(code); got != name {
			t.Errorf("MsgName(0x%04x) = %q, neoppod: %q", code, got, name)
		}
		m := proto.NewMsg(code)
		if m == nil {
			t.Errorf("NewMsg(0x%04x) = nil, neoppod: %s", code, name)
			return
		}
		if got := m.NEOMsgCode(); got != code {
			t.Errorf("NewMsg(0x%04x).NEOMsgCode() = 0x%04x", code, got)
		}
		if got := reflect.TypeOf(m).Elem().Name(); got != name {
			t.Errorf("NewMsg(0x%04x) is %s, neoppod: %s", code, got, name)
		}
		if got, ok := proto.MsgKind(code); !ok || got != kind {
			t.Errorf("MsgKind(0x%04x) (%s) = %v, %v; want %v", code, name, got, ok, kind)
		}
	}
	checkNone := func(code uint16, why string) {
		t.Helper()
		if m := proto.NewMsg(code); m != nil {
			t.Errorf("NewMsg(0x%04x) = %T, want nil: %s", code, m, why)
		}
	}
	for _, c := range reg.Codes {
		switch c.Kind {
		case "E":
			checkCode(c.WireCode, c.Name, proto.KindError)
			checkNone(c.Code, "Error is only sent as 0x8000")
		case "R":
			checkCode(c.Code, c.Name, proto.KindAsk)
			checkCode(c.AnswerCode, c.Answer, proto.KindAnswer)
			if got, ok := proto.AnswerCode(c.Code); !ok || got != c.AnswerCode {
				t.Errorf("AnswerCode(%d) (%s) = 0x%04x, %v; neoppod: 0x%04x", c.Code, c.Name, got, ok, c.AnswerCode)
			}
		case "RE":
			checkCode(c.Code, c.Name, proto.KindAskError)
			checkNone(c.Code|proto.ResponseMask, c.Name+" is answered by Error")
			if got, ok := proto.AnswerCode(c.Code); ok {
				t.Errorf("AnswerCode(%d) (%s) = 0x%04x, want none (answered by Error)", c.Code, c.Name, got)
			}
		case "N":
			checkCode(c.Code, c.Name, proto.KindNotify)
			checkNone(c.Code|proto.ResponseMask, c.Name+" is a notification")
		default:
			t.Errorf("registry.json: code %d: unknown kind %q", c.Code, c.Kind)
		}
	}
	n := uint16(len(reg.Codes))
	checkNone(n, "beyond neoppod's last code")
	checkNone(n|proto.ResponseMask, "beyond neoppod's last code")
	checkNone(0x7fff, "beyond neoppod's last code")
	checkNone(0xffff, "beyond neoppod's last code")
}

// ---- typed tree of a decoded message ----
//
// The tree has the shape of the "args" of the vectors (see
// scripts/gen-golden), built from the Go values by reflection with the
// contract of package proto, not with its codec:
//
//	struct (message or nested)  array of its exported fields in order
//	Tid, Oid                    {"bin": 8 bytes}, null for InvalidTid/Oid
//	NodeID, PTid                number, null for 0
//	Addr                        [{"bin": host}, port], null for the zero Addr
//	string, []byte              {"bin": ...}
//	NodeType, NodeState, ...    {"enum": [ext code, value]}
//	ErrorCode, other integers   number ({"int": "..."} beyond 2^53)
//	float64                     {"float": IEEE 754 bits}
//	Opt[T], pointer             null or the value
//	slice                       array; a map when tagged neo:"map"
//	Dict, Map                   {"map": [[k, v], ...]}
//	Value                       by its dynamic type

var (
	tidType   = reflect.TypeFor[proto.Tid]()
	oidType   = reflect.TypeFor[proto.Oid]()
	nodeIDTyp = reflect.TypeFor[proto.NodeID]()
	ptidType  = reflect.TypeFor[proto.PTid]()
	addrType  = reflect.TypeFor[proto.Addr]()
	dictType  = reflect.TypeFor[proto.Dict]()
	mapType   = reflect.TypeFor[proto.Map]()
	errCode   = reflect.TypeFor[proto.ErrorCode]()
	enumExt   = map[reflect.Type]int{
		reflect.TypeFor[proto.CellState]():    proto.ExtCellStates,
		reflect.TypeFor[proto.ClusterState](): proto.ExtClusterStates,
		reflect.TypeFor[proto.NodeState]():    proto.ExtNodeStates,
		reflect.TypeFor[proto.NodeType]():     proto.ExtNodeTypes,
	}
)

func argsTree(m proto.Msg) (any, error) {
	v := reflect.ValueOf(m)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return nil, fmt.Errorf("message %T is not a pointer to a struct", m)
	}
	return structTree(v.Elem())
}

func structTree(v reflect.Value) (any, error) {
	out := []any{}
	for i := 0; i < v.NumField(); i++ {
		f := v.Type().Field(i)
		if !f.IsExported() {
			continue
		}
		var x any
		var err error
		if f.Tag.Get("neo") == "map" && f.Type.Kind() == reflect.Slice && f.Type != dictType && f.Type != mapType {
			x, err = pairsTree(v.Field(i))
		} else {
			x, err = valueTree(v.Field(i))
		}
		if err != nil {
			return nil, fmt.Errorf("%s.%s: %w", v.Type().Name(), f.Name, err)
		}
		out = append(out, x)
	}
	return out, nil
}

// pairsTree turns a slice of structs {Key, fields...} into a map: the value
// is the second field, or the array of the remaining fields if more.
func pairsTree(v reflect.Value) (any, error) {
	et := v.Type().Elem()
	if et.Kind() != reflect.Struct || et.NumField() < 2 {
		return nil, fmt.Errorf("map field of %s: want a slice of key/value structs", v.Type())
	}
	items := []any{}
	for i := 0; i < v.Len(); i++ {
		e, err := structTree(v.Index(i))
		if err != nil {
			return nil, err
		}
		fields := e.([]any)
		val := any(fields[1:])
		if len(fields) == 2 {
			val = fields[1]
		}
		items = append(items, []any{fields[0], val})
	}
	return map[string]any{"map": items}, nil
}

func binTree(b []byte) any { return map[string]any{"bin": hex.EncodeToString(b)} }

func intTree(neg bool, u uint64) any {
	if u > 1<<53 {
		s := strconv.FormatUint(u, 10)
		if neg {
			s = "-" + s
		}
		return map[string]any{"int": s}
	}
	if neg {
		return json.Number("-" + strconv.FormatUint(u, 10))
	}
	return json.Number(strconv.FormatUint(u, 10))
}

func signedTree(i int64) any {
	if i < 0 {
		return intTree(true, uint64(-i))
	}
	return intTree(false, uint64(i))
}

func floatTree(f float64) any {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], math.Float64bits(f))
	return map[string]any{"float": hex.EncodeToString(b[:])}
}

func valueTree(v reflect.Value) (any, error) {
	t := v.Type()
	switch t {
	case tidType:
		if proto.Tid(v.Uint()) == proto.InvalidTid {
			return nil, nil
		}
		return binTree(binary.BigEndian.AppendUint64(nil, v.Uint())), nil
	case oidType:
		if proto.Oid(v.Uint()) == proto.InvalidOid {
			return nil, nil
		}
		return binTree(binary.BigEndian.AppendUint64(nil, v.Uint())), nil
	case nodeIDTyp:
		if v.Int() == 0 {
			return nil, nil
		}
		return signedTree(v.Int()), nil
	case ptidType:
		if v.Uint() == 0 {
			return nil, nil
		}
		return intTree(false, v.Uint()), nil
	case addrType:
		a := v.Interface().(proto.Addr)
		if a == (proto.Addr{}) {
			return nil, nil
		}
		return []any{binTree([]byte(a.Host)), intTree(false, uint64(a.Port))}, nil
	case errCode:
		return intTree(false, v.Uint()), nil
	case dictType:
		items := []any{}
		for _, it := range v.Interface().(proto.Dict) {
			x, err := dynTree(it.Value)
			if err != nil {
				return nil, fmt.Errorf("key %q: %w", it.Key, err)
			}
			items = append(items, []any{binTree([]byte(it.Key)), x})
		}
		return map[string]any{"map": items}, nil
	}
	if ext, ok := enumExt[t]; ok {
		return map[string]any{"enum": []any{json.Number(strconv.Itoa(ext)), intTree(false, v.Uint())}}, nil
	}
	if t.Kind() == reflect.Struct && strings.HasPrefix(t.Name(), "Opt[") {
		if !v.FieldByName("Valid").Bool() {
			return nil, nil
		}
		return valueTree(v.FieldByName("V"))
	}
	switch t.Kind() {
	case reflect.Bool:
		return v.Bool(), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return signedTree(v.Int()), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return intTree(false, v.Uint()), nil
	case reflect.Float64:
		return floatTree(v.Float()), nil
	case reflect.String:
		return binTree([]byte(v.String())), nil
	case reflect.Pointer:
		if v.IsNil() {
			return nil, nil
		}
		return valueTree(v.Elem())
	case reflect.Interface:
		if v.IsNil() {
			return nil, nil
		}
		return dynTree(v.Interface())
	case reflect.Struct:
		return structTree(v)
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return binTree(v.Bytes()), nil
		}
		out := []any{}
		for i := 0; i < v.Len(); i++ {
			x, err := valueTree(v.Index(i))
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			out = append(out, x)
		}
		return out, nil
	}
	return nil, fmt.Errorf("no tree for type %s", t)
}

// dynTree converts a free-form proto.Value.
func dynTree(x proto.Value) (any, error) {
	switch x := x.(type) {
	case nil:
		return nil, nil
	case proto.Map:
		items := []any{}
		for _, it := range x {
			k, err := dynTree(it.Key)
			if err != nil {
				return nil, err
			}
			v, err := dynTree(it.Value)
			if err != nil {
				return nil, err
			}
			items = append(items, []any{k, v})
		}
		return map[string]any{"map": items}, nil
	case []proto.Value:
		out := []any{}
		for _, e := range x {
			v, err := dynTree(e)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case proto.Str:
		return map[string]any{"str": hex.EncodeToString([]byte(x))}, nil
	}
	return valueTree(reflect.ValueOf(x))
}

// normTree rewrites the JSON-decoded golden tree into the form built by
// argsTree (numbers stay json.Number; everything else is already alike).
func normTree(x any) any {
	switch x := x.(type) {
	case []any:
		for i := range x {
			x[i] = normTree(x[i])
		}
	case map[string]any:
		for k := range x {
			x[k] = normTree(x[k])
		}
	}
	return x
}

// treeDiff returns the path and description of the first difference
// between two trees, or "" if they are equal.
func treeDiff(got, want any, path string) (string, string) {
	switch w := want.(type) {
	case []any:
		g, ok := got.([]any)
		if !ok {
			return path, fmt.Sprintf("got %s, want array %s", show(got), show(want))
		}
		if len(g) != len(w) {
			return path, fmt.Sprintf("got %d elements, want %d: got %s, want %s", len(g), len(w), show(got), show(want))
		}
		for i := range w {
			if p, d := treeDiff(g[i], w[i], fmt.Sprintf("%s[%d]", path, i)); d != "" {
				return p, d
			}
		}
		return "", ""
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return path, fmt.Sprintf("got %s, want %s", show(got), show(want))
		}
		if len(g) != len(w) {
			return path, fmt.Sprintf("got %s, want %s", show(got), show(want))
		}
		for k := range w {
			gv, ok := g[k]
			if !ok {
				return path, fmt.Sprintf("got %s, want %s", show(got), show(want))
			}
			if p, d := treeDiff(gv, w[k], path+"."+k); d != "" {
				return p, d
			}
		}
		return "", ""
	}
	if !reflect.DeepEqual(got, want) {
		return path, fmt.Sprintf("got %s, want %s", show(got), show(want))
	}
	return "", ""
}

// show prints a tree compactly, eliding long bins.
func show(x any) string {
	b, err := json.Marshal(x)
	if err != nil {
		return fmt.Sprintf("%#v", x)
	}
	if len(b) > 200 {
		return string(b[:200]) + "…"
	}
	return string(b)
}

// bytesDiff describes where two encodings first differ.
func bytesDiff(got, want []byte) string {
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	lo := max(i-8, 0)
	window := func(b []byte) string {
		return fmt.Sprintf("% x", b[lo:min(i+16, len(b))])
	}
	return fmt.Sprintf("  first difference at byte %d (got %d bytes, want %d)\n  got  [%d:] %s\n  want [%d:] %s",
		i, len(got), len(want), lo, window(got), lo, window(want))
}
