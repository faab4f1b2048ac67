package main

import (
	"bytes"
	"compress/zlib"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/neogo/neo/nodetab"
	"github.com/neogo/neo/proto"
)

// levelName is Python's logging.getLevelName.
func levelName(l int64) string {
	switch l {
	case 10:
		return "DEBUG"
	case 20:
		return "INFO"
	case 30:
		return "WARNING"
	case 40:
		return "ERROR"
	case 50:
		return "CRITICAL"
	case 0:
		return "NOTSET"
	}
	return "Level " + strconv.FormatInt(l, 10)
}

// nidString is neoppod's uuid_str of a node id.
func nidString(nid int64) string { return proto.NodeID(nid).String() }

func nowUnix() float64 { return float64(time.Now().UnixNano()) / 1e9 }

// packetLines returns the lines of a packet: "#0x0001 AskObject  > S1 (addr)"
// and, for NotifyNodeInformation and Error, the lines neoppod's neolog
// adds; with -a, the arguments decoded by package proto.
func packetLines(o *options, id uint32, code uint16, peer string, body []byte) []string {
	name := "UnknownPacket[" + strconv.Itoa(int(code)) + "]"
	m := proto.NewMsg(code)
	if m != nil {
		name = proto.MsgName(code)
	} else {
		body = nil
	}
	lines := []string{fmt.Sprintf("#0x%04x %-30s %s", id, name, peer)}
	if body == nil {
		return lines
	}
	_, isNodes := m.(*proto.NotifyNodeInformation)
	_, isError := m.(*proto.Error)
	if !isNodes && !isError && o.decode == 0 {
		return lines
	}
	err := decode(m, body)
	if err != nil {
		// A log of neoppod's may hold enums as msgpack exts.
		if u, uerr := unwrapExt(body); uerr == nil {
			err = decode(m, u)
		}
	}
	if err != nil {
		return append(lines, "Can't decode packet")
	}
	switch m := m.(type) {
	case *proto.NotifyNodeInformation:
		lines = append(lines, nodeListLines(m.NodeList, " ! ")...)
		if o.decode > 0 {
			lines[0] += " \t| (" + proto.FormatFloat(m.Timestamp) + ",)"
		}
		return lines
	case *proto.Error:
		return append(lines, fmt.Sprintf("%s (%s)", m.Code, pyBytes([]byte(m.Message))))
	}
	if o.decode > 1 {
		decompressData(reflect.ValueOf(m).Elem())
	}
	if s := formatArgs(reflect.ValueOf(m).Elem()); s != "" {
		lines[0] += " \t| " + s
	}
	return lines
}

// decode decodes the arguments body into m, which must take all of it.
func decode(m proto.Msg, body []byte) error {
	n, err := m.NEOMsgDecode(body)
	if err == nil && n != len(body) {
		err = fmt.Errorf("%d bytes after the arguments", len(body)-n)
	}
	return err
}

// nodeListLines formats a node list as neoppod's formatNodeList.
func nodeListLines(nodes []proto.NodeInfo, prefix string) []string {
	ns := make([]nodetab.Node, len(nodes))
	for i, n := range nodes {
		ns[i] = nodetab.Node(n)
	}
	return nodetab.FormatLines(ns, prefix)
}

// pyBytes is Python's repr of bytes: b'...'.
func pyBytes(b []byte) string {
	q := byte('\'')
	if bytes.IndexByte(b, '\'') >= 0 && bytes.IndexByte(b, '"') < 0 {
		q = '"'
	}
	var s strings.Builder
	s.WriteByte('b')
	s.WriteByte(q)
	for _, c := range b {
		switch {
		case c == q || c == '\\':
			s.WriteByte('\\')
			s.WriteByte(c)
		case c == '\t':
			s.WriteString(`\t`)
		case c == '\n':
			s.WriteString(`\n`)
		case c == '\r':
			s.WriteString(`\r`)
		case c < 0x20 || c >= 0x7f:
			fmt.Fprintf(&s, `\x%02x`, c)
		default:
			s.WriteByte(c)
		}
	}
	s.WriteByte(q)
	return s.String()
}

// formatArgs formats a decoded packet's fields: "(Field=value, ...)",
// "" for a packet without arguments.
func formatArgs(v reflect.Value) string {
	if v.NumField() == 0 {
		return ""
	}
	return formatValue(v)
}

var stringer = reflect.TypeFor[fmt.Stringer]()

// formatValue writes v readably: ids and enums by their String, byte
// strings as Python bytes, structs as (Field=value, ...), lists in [].
func formatValue(v reflect.Value) string {
	if v.Type().Implements(stringer) {
		return v.Interface().(fmt.Stringer).String()
	}
	switch v.Kind() {
	case reflect.Struct:
		t := v.Type()
		if o, ok := optValue(v); ok {
			return o
		}
		parts := make([]string, 0, v.NumField())
		for i := range v.NumField() {
			if !t.Field(i).IsExported() {
				continue
			}
			parts = append(parts, t.Field(i).Name+"="+formatValue(v.Field(i)))
		}
		return "(" + strings.Join(parts, ", ") + ")"
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return pyBytes(v.Bytes())
		}
		parts := make([]string, v.Len())
		for i := range v.Len() {
			parts[i] = formatValue(v.Index(i))
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case reflect.Map:
		keys := v.MapKeys()
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = formatValue(k) + ": " + formatValue(v.MapIndex(k))
		}
		slices.Sort(parts)
		return "{" + strings.Join(parts, ", ") + "}"
	case reflect.String:
		return strconv.Quote(v.String())
	case reflect.Float32, reflect.Float64:
		return proto.FormatFloat(v.Float())
	case reflect.Bool:
		if v.Bool() {
			return "True"
		}
		return "False"
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return "None"
		}
		return formatValue(v.Elem())
	}
	return fmt.Sprint(v.Interface())
}

// optValue formats a proto.Opt: its value, or None.
func optValue(v reflect.Value) (string, bool) {
	valid, val := v.FieldByName("Valid"), v.FieldByName("V")
	if v.NumField() != 2 || !valid.IsValid() || !val.IsValid() || valid.Kind() != reflect.Bool {
		return "", false
	}
	if !valid.Bool() {
		return "None", true
	}
	return formatValue(val), true
}

// decompressData decompresses in place, for -A, the data of the records
// in v: a Data field beside a Compression field that is set.
func decompressData(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			decompressData(v.Elem())
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() != reflect.Uint8 {
			for i := range v.Len() {
				decompressData(v.Index(i))
			}
		}
	case reflect.Struct:
		c, d := v.FieldByName("Compression"), v.FieldByName("Data")
		if c.IsValid() && d.IsValid() && d.Kind() == reflect.Slice && d.Type().Elem().Kind() == reflect.Uint8 && c.CanSet() {
			on := false
			switch c.Kind() {
			case reflect.Uint8:
				on = c.Uint() != 0
			case reflect.Struct: // Opt[uint8]
				on = c.Field(1).Bool() && c.Field(0).Uint() != 0
			}
			if on {
				if z, err := zlib.NewReader(bytes.NewReader(d.Bytes())); err == nil {
					if out, err := io.ReadAll(z); err == nil {
						d.SetBytes(out)
						c.SetZero()
					}
				}
			}
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				decompressData(v.Field(i))
			}
		}
	}
}
