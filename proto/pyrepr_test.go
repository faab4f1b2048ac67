package proto

import (
	"math"
	"testing"
)

// The wants are Python 3's repr of each value.
func TestFormatFloat(t *testing.T) {
	for _, c := range []struct {
		f    float64
		want string
	}{
		{0, "0.0"}, {2.5, "2.5"}, {90, "90.0"}, {-0.001, "-0.001"}, {1e-06, "1e-06"}, {0.0001, "0.0001"},
		{1e16, "1e+16"}, {123456.789012, "123456.789012"}, {1765000000.25, "1765000000.25"}, {1.5e-7, "1.5e-07"},
		{-2.5e22, "-2.5e+22"}, {1e15, "1000000000000000.0"}, {math.Inf(1), "inf"}, {math.Inf(-1), "-inf"},
		{math.NaN(), "nan"}, {math.Copysign(0, -1), "-0.0"}, {0.1, "0.1"},
	} {
		if got := FormatFloat(c.f); got != c.want {
			t.Errorf("FormatFloat(%v) = %q, want %q", c.f, got, c.want)
		}
	}
}
