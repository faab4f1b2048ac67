package proto

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

func utc(y int, mo time.Month, d, h, mi, s, ns int) time.Time {
	return time.Date(y, mo, d, h, mi, s, ns, time.UTC)
}

func TestTidFromTimeSpecExample(t *testing.T) {
	// protocol.md §4.2: 1700000000.5 (2023-11-14 22:13:20.5 UTC) → 03 f4 7f 95 57 77 77 77.
	const want Tid = 0x03f47f9557777777
	if got := TidFromUnix(1700000000.5); got != want {
		t.Errorf("TidFromUnix(1700000000.5) = %v, want %v", got, want)
	}
	if got := TidFromTime(time.Unix(1700000000, 5e8)); got != want {
		t.Errorf("TidFromTime(2023-11-14 22:13:20.5) = %v, want %v", got, want)
	}
	// The low word is floored, so the time printed back is just below .5.
	if got := FormatTidTime(want); got != "2023-11-14 22:13:20.499999" {
		t.Errorf("FormatTidTime = %q", got)
	}
}

func TestTidFromTimeLayout(t *testing.T) {
	tests := []struct {
		name string
		t    time.Time
		want Tid
	}{
		{"epoch of the tid calendar is 1900-01-01", utc(1900, 1, 1, 0, 0, 0, 0), 0},
		{"one minute is one unit of the high word", utc(1900, 1, 1, 0, 1, 0, 0), 1 << 32},
		{"months have 31 days", utc(1900, 2, 1, 0, 0, 0, 0), 31 * 24 * 60 << 32},
		{"years have 12 months of 31 days", utc(1901, 1, 1, 0, 0, 0, 0), 12 * 31 * 24 * 60 << 32},
		{"30 seconds is half the low word", utc(1900, 1, 1, 0, 0, 30, 0), 1 << 31},
		{"the low word is floored", utc(1900, 1, 1, 0, 0, 0, 1000), 71},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := TidFromTime(tt.t); got != tt.want {
				t.Errorf("TidFromTime(%v) = %v, want %v", tt.t, got, tt.want)
			}
		})
	}
}

func TestAddTidCarriesWithTheCalendar(t *testing.T) {
	tests := []struct {
		name     string
		from, to time.Time
		n        int64
	}{
		{"minute rollover", utc(2023, 11, 14, 22, 13, 59, 0), utc(2023, 11, 14, 22, 14, 0, 0), 0},
		{"hour rollover", utc(2023, 11, 14, 22, 59, 59, 0), utc(2023, 11, 14, 23, 0, 0, 0), 0},
		{"day rollover", utc(2023, 11, 14, 23, 59, 59, 0), utc(2023, 11, 15, 0, 0, 0, 0), 0},
		{"30-day month rollover", utc(2010, 11, 30, 23, 59, 59, 0), utc(2010, 12, 1, 0, 0, 0, 0), 0},
		{"year rollover", utc(2023, 12, 31, 23, 59, 59, 0), utc(2024, 1, 1, 0, 0, 0, 0), 0},
		{"february of a leap year has 29 days", utc(2024, 2, 28, 23, 59, 59, 0), utc(2024, 2, 29, 0, 0, 0, 0), 0},
		{"leap day rolls over to march", utc(2024, 2, 29, 23, 59, 59, 0), utc(2024, 3, 1, 0, 0, 0, 0), 0},
		{"february of a common year has 28 days", utc(2023, 2, 28, 23, 59, 59, 0), utc(2023, 3, 1, 0, 0, 0, 0), 0},
		{"1900 is not a leap year", utc(1900, 2, 28, 23, 59, 59, 0), utc(1900, 3, 1, 0, 0, 0, 0), 0},
		{"2000 is a leap year", utc(2000, 2, 28, 23, 59, 59, 0), utc(2000, 2, 29, 0, 0, 0, 0), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Step from the last tick of the minute to the first of the next.
			last := TidFromTime(tt.from)&^0xffffffff | 0xffffffff
			first := TidFromTime(tt.to)
			if first&0xffffffff != 0 {
				t.Fatalf("bad test: %v is not at a minute boundary", tt.to)
			}
			if got := AddTid(last, 1); got != first {
				t.Errorf("AddTid(%v (%s), 1) = %v (%s), want %v (%s)", last, FormatTidTime(last),
					got, FormatTidTime(got), first, FormatTidTime(first))
			}
			if got := AddTid(first, -1); got != last {
				t.Errorf("AddTid(%v (%s), -1) = %v (%s), want %v", first, FormatTidTime(first),
					got, FormatTidTime(got), last)
			}
			// Whole days move the date only.
			day := int64(24*60) << 32
			if got := TidTime(AddTid(first, day)); !got.Equal(tt.to.AddDate(0, 0, 1)) {
				t.Errorf("AddTid(+1 day) = %v, want %v", got, tt.to.AddDate(0, 0, 1))
			}
			if got := TidTime(AddTid(first, -day)); !got.Equal(tt.to.AddDate(0, 0, -1)) {
				t.Errorf("AddTid(-1 day) = %v, want %v", got, tt.to.AddDate(0, 0, -1))
			}
		})
	}
}

func TestAddTidWithoutCarryIsPlainAddition(t *testing.T) {
	tid := Tid(0x03f47f9557777777)
	if got := AddTid(tid, 0x10); got != tid+0x10 {
		t.Errorf("AddTid(+0x10) = %v", got)
	}
	if got := AddTid(tid, -0x57777777); got != 0x03f47f9500000000 {
		t.Errorf("AddTid(to the minute) = %v", got)
	}
}

func TestTidTimeRoundTrip(t *testing.T) {
	// One tick is 60/2^32 s ≈ 14ns, so a time survives the round trip to
	// within 14ns, always rounded down.
	for _, tm := range []time.Time{
		utc(2023, 11, 14, 22, 13, 20, 500000000),
		utc(2024, 2, 29, 23, 59, 59, 999999999),
		utc(1999, 12, 31, 0, 0, 0, 1234567),
	} {
		got := TidTime(TidFromTime(tm))
		if d := tm.Sub(got); d < 0 || d >= 14*time.Nanosecond {
			t.Errorf("TidTime(TidFromTime(%v)) = %v (off by %v)", tm, got, d)
		}
	}
}

func TestNextTTIDIsGreaterThanLast(t *testing.T) {
	now := utc(2023, 11, 14, 22, 13, 20, 0)
	nowTid := TidFromTime(now)
	tests := []struct {
		name string
		last Tid
		want Tid
	}{
		{"clock ahead: tid of now", nowTid - 100, nowTid},
		{"clock equal: successor of last", nowTid, nowTid + 1},
		{"clock behind: successor of last", nowTid + 1000, nowTid + 1001},
		{"successor carries a minute", nowTid | 0xffffffff, (nowTid | 0xffffffff) + 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NextTTID(tt.last, now); got != tt.want {
				t.Errorf("NextTTID(%v, now=%v) = %v, want %v", tt.last, nowTid, got, tt.want)
			}
		})
	}
}

func TestFinalTidRules(t *testing.T) {
	now := utc(2023, 11, 14, 22, 13, 20, 0)
	nowTid := TidFromTime(now) // 0x03f47f9555555555 ≡ 5 (mod 12)
	if nowTid%12 != 5 {
		t.Fatalf("bad test: nowTid %% 12 = %d", nowTid%12)
	}
	tests := []struct {
		name       string
		last, ttid Tid
		np         uint32
		want       Tid
	}{
		{"aligned already", nowTid - 50, nowTid - 60, 12, nowTid},
		{"prefers moving backwards", nowTid - 50, nowTid - 62, 12, nowTid - 2},
		{"moves forwards by np when backwards is not above last", nowTid - 1, nowTid - 62, 12, nowTid + 10},
		{"clock behind and ttid is last: ttid is reused", nowTid + 5, nowTid + 5, 12, nowTid + 5},
		{"clock behind: after last", nowTid + 5, nowTid + 1, 12, nowTid + 13},
		{"one partition: tid of now", nowTid - 5, nowTid - 7, 1, nowTid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := FinalTid(tt.last, tt.ttid, tt.np, now)
			if got != tt.want {
				t.Errorf("FinalTid(last=%v, ttid=%v, np=%d) = %v, want %v", tt.last, tt.ttid, tt.np, got, tt.want)
			}
			if got < tt.ttid || uint64(got)%uint64(tt.np) != uint64(tt.ttid)%uint64(tt.np) {
				t.Errorf("FinalTid = %v breaks tid >= ttid and tid ≡ ttid (mod np)", got)
			}
		})
	}
}

func TestParseTid(t *testing.T) {
	tests := []struct {
		in   string
		want Tid
		ok   bool
	}{
		// The examples of neoctl's usage text.
		{"tid:257684787499560686", 257684787499560686, true},
		{"tid:0x3937af2eeeeeeee", 0x3937af2eeeeeeee, true},
		{"1325421296", TidFromTime(utc(2012, 1, 1, 12, 34, 56, 0)), true},
		{"TID:0X10", 0x10, true},
		{"tid:0", 0, true},
		{"tid:0o17", 0o17, true},
		{"tid:0b101", 5, true},
		{"1700000000.5", 0x03f47f9557777777, true},
		{"tid:18446744073709551615", 0xffffffffffffffff, true},
		{"tid:18446744073709551616", 0, false},
		{"tid:010", 0, false}, // Python rejects leading zeros
		{"tid:-1", 0, false},
		{"tid:", 0, false},
		{"yesterday", 0, false},
		{"nan", 0, false},
		{"-5", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseTid(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseTid(%q) = %v, %v; want %v, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestFormatDatetime(t *testing.T) {
	tests := []struct {
		t    time.Time
		want string
	}{
		{utc(2012, 1, 1, 12, 34, 56, 0), "2012-01-01 12:34:56"},
		{utc(2012, 1, 1, 12, 34, 56, 1000), "2012-01-01 12:34:56.000001"},
		{utc(2012, 1, 1, 12, 34, 56, 999), "2012-01-01 12:34:56"},
		{utc(900, 1, 1, 0, 0, 0, 0), "0900-01-01 00:00:00"},
	}
	for _, tt := range tests {
		if got := FormatDatetime(tt.t); got != tt.want {
			t.Errorf("FormatDatetime(%v) = %q, want %q", tt.t, got, tt.want)
		}
	}
}

// TestTidAgainstNeoppod checks values computed by neoppod's tidFromTime,
// addTID, datetimeFromTID, timeFromTID and the master's _nextTID
// (testdata/tid_neoppod.txt, generated once with neoppod).
func TestTidAgainstNeoppod(t *testing.T) {
	f, err := os.Open("testdata/tid_neoppod.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	hex := func(s string) Tid {
		t.Helper()
		v, err := strconv.ParseUint(s, 16, 64)
		if err != nil {
			t.Fatalf("bad hex %q", s)
		}
		return Tid(v)
	}
	flt := func(s string) float64 {
		t.Helper()
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatalf("bad float %q", s)
		}
		return v
	}
	counts := map[string]int{}
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		if text == "" || text[0] == '#' {
			continue
		}
		w := strings.Fields(text)
		counts[w[0]]++
		switch w[0] {
		case "fromunix":
			if got := TidFromUnix(flt(w[1])); got != hex(w[2]) {
				t.Errorf("line %d: TidFromUnix(%s) = %v, want %s", line, w[1], got, w[2])
			}
		case "add":
			n, _ := strconv.ParseInt(w[2], 10, 64)
			if got := AddTid(hex(w[1]), n); got != hex(w[3]) {
				t.Errorf("line %d: AddTid(%s, %d) = %v, want %s", line, w[1], n, got, w[3])
			}
		case "datetime":
			tid := hex(w[1])
			if got := FormatTidTime(tid); got != strings.Replace(w[2], "T", " ", 1) {
				t.Errorf("line %d: FormatTidTime(%s) = %q, want %q", line, w[1], got, w[2])
			}
			if got := TidUnix(tid); got != flt(w[3]) {
				t.Errorf("line %d: TidUnix(%s) = %v, want %s", line, w[1], got, w[3])
			}
		case "final":
			now := flt(w[1])
			sec := int64(now)
			nowT := time.Unix(sec, int64((now-float64(sec))*1e9))
			last := hex(w[2])
			np, _ := strconv.ParseUint(w[4], 10, 32)
			var got Tid
			if w[3] == "-" {
				got = NextTTID(last, nowT)
			} else {
				got = FinalTid(last, hex(w[3]), uint32(np), nowT)
			}
			if got != hex(w[5]) {
				t.Errorf("line %d: now=%s last=%s ttid=%s np=%d: got %v, want %s", line, w[1], w[2], w[3], np, got, w[5])
			}
		default:
			t.Fatalf("line %d: unknown record %q", line, w[0])
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"fromunix", "add", "datetime", "final"} {
		if counts[k] < 100 {
			t.Errorf("only %d %q records in testdata", counts[k], k)
		}
	}
}

func BenchmarkAddTidCarry(b *testing.B) {
	b.ReportAllocs()
	tid := Tid(0x03f47f95ffffffff)
	for b.Loop() {
		_ = AddTid(tid, 1)
	}
}
