package proto

import (
	"math"
	"strconv"
	"strings"
)

// FormatFloat is Python's repr of f, as neoppod prints floats (a
// packet's timestamp in neolog, a backup's lag): the shortest digits that
// read back as f, in fixed notation with at least one decimal for
// exponents in [-4, 16), else in scientific notation; inf, -inf, nan.
func FormatFloat(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	case math.IsNaN(f):
		return "nan"
	}
	e := strconv.FormatFloat(f, 'e', -1, 64) // d.ddde±XX: Python's form too
	exp, _ := strconv.Atoi(e[strings.IndexByte(e, 'e')+1:])
	if exp < -4 || exp >= 16 {
		return e
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.ContainsRune(s, '.') {
		s += ".0"
	}
	return s
}
