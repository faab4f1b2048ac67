package bytesize

import "testing"

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		bad  bool
	}{
		{in: "0", want: 0},
		{in: "4096", want: 4096},
		{in: "64M", want: 64 << 20},
		{in: "64m", want: 64 << 20},
		{in: "64MB", want: 64 << 20},
		{in: "64MiB", want: 64 << 20},
		{in: "512K", want: 512 << 10},
		{in: "2G", want: 2 << 30},
		{in: "", bad: true},
		{in: "M", bad: true},
		{in: "-1", bad: true},
		{in: "1T", bad: true},
		{in: "1.5G", bad: true},
		{in: "9999999999G", bad: true},
	} {
		got, err := Parse(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("Parse(%q) = %d, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Parse(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
}
