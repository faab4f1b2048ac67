package proto

// TID arithmetic (protocol.md §4.2, cluster.md §6.1).
//
// A tid is a ZODB TimeStamp: the high 32 bits count minutes since
// 1900-01-01 00:00 UTC in a calendar of 31-day months, the low 32 bits are
// the seconds within that minute scaled by 2^32/60:
//
//	 63                              32 31                               0
//	+----------------------------------+----------------------------------+
//	| ((((y-1900)*12+mo-1)*31+d-1)*24   | floor(sec * 2^32 / 60)           |
//	|   +h)*60+mi                       | (capped to 2^32-1)               |
//	+----------------------------------+----------------------------------+
//
// Impossible dates (February 30) are never produced; months simply waste
// the unused day numbers. Everything here is pure: the current time is an
// argument.

import (
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"strings"
	"time"
)

const (
	tidLowOverflow = 1 << 32
	tidLowMax      = tidLowOverflow - 1
	// secondFromLow is neoppod's SECOND_FROM_UINT32: exactly 15*2^-30, so
	// dividing by it rounds the same way in Go as in Python.
	secondFromLow = 60.0 / tidLowOverflow
)

// tidFields are the calendar fields of a tid's high word.
type tidFields struct {
	year, month, day, hour, minute int
}

func packHigh(f tidFields) uint64 {
	return uint64(((((f.year-1900)*12+f.month-1)*31+f.day-1)*24+f.hour)*60 + f.minute)
}

func unpackHigh(high uint32) tidFields {
	h := int(high)
	var f tidFields
	f.minute = h % 60
	h /= 60
	f.hour = h % 24
	h /= 24
	f.day = h%31 + 1
	h /= 31
	f.month = h%12 + 1
	h /= 12
	f.year = h + 1900
	return f
}

func fieldsOf(t time.Time) tidFields {
	t = t.UTC()
	return tidFields{t.Year(), int(t.Month()), t.Day(), t.Hour(), t.Minute()}
}

func makeTid(f tidFields, low uint64) Tid {
	if low > tidLowMax {
		low = tidLowMax // leap seconds saturate, as in neoppod
	}
	return Tid(packHigh(f)<<32 | low)
}

// TidFromUnix returns the tid of t seconds since the Unix epoch, computed
// with the same float64 operations as neoppod's tidFromTime so that both
// give the same tid for the same float. t must be in [0, 2^52).
func TidFromUnix(t float64) Tid {
	whole := math.Floor(t) // gmtime() rounds towards -inf
	tm := time.Unix(int64(whole), 0).UTC()
	frac := t - math.Trunc(t)
	low := (float64(tm.Second()) + frac) / secondFromLow
	return makeTid(fieldsOf(tm), uint64(low))
}

// TidFromTime returns the tid of time t, exactly: the low word is the floor
// of the nanosecond-precise second within the minute scaled by 2^32/60.
func TidFromTime(t time.Time) Tid {
	t = t.UTC()
	ns := uint64(t.Second())*1e9 + uint64(t.Nanosecond())
	hi, lo := bits.Mul64(ns, tidLowOverflow)
	low, _ := bits.Div64(hi, lo, 60e9)
	return makeTid(fieldsOf(t), low)
}

// TidTime returns the UTC time a tid encodes, truncated to the nanosecond.
// A high word naming an impossible date (day 31 of a 30-day month, which
// no cluster issues) is normalised by [time.Date].
func TidTime(tid Tid) time.Time {
	f := unpackHigh(uint32(tid >> 32))
	scaled := uint64(uint32(tid)) * 60 // seconds * 2^32
	sec, rem := scaled>>32, scaled&tidLowMax
	ns := rem * 1e9 >> 32
	return time.Date(f.year, time.Month(f.month), f.day, f.hour, f.minute,
		int(sec), int(ns), time.UTC)
}

// TidUnix returns the tid's time as float seconds since the Unix epoch,
// with microsecond precision like neoppod's timeFromTID.
func TidUnix(tid Tid) float64 {
	t := TidTime(tid)
	us := t.Unix()*1e6 + int64(t.Nanosecond()/1e3)
	return float64(us) / 1e6
}

// AddTid adds n (possibly negative) to the low word of tid and carries
// whole minutes into the high word with calendar arithmetic, as neoppod's
// addTID: it is not plain 64-bit addition. Results before 1900 saturate to
// [ZeroTid]; results beyond the 32-bit minute counter to [InvalidTid].
func AddTid(tid Tid, n int64) Tid {
	low := int64(uint32(tid)) + n
	carry := low >> 32 // floor division by 2^32
	low &= tidLowMax
	f := unpackHigh(uint32(tid >> 32))
	if carry != 0 {
		t := time.Date(f.year, time.Month(f.month), f.day, f.hour, f.minute, 0, 0, time.UTC)
		t = time.Unix(t.Unix()+carry*60, 0).UTC()
		if t.Year() < 1900 {
			return ZeroTid
		}
		f = fieldsOf(t)
		if packHigh(f) > math.MaxUint32 {
			return InvalidTid
		}
	}
	return makeTid(f, uint64(low))
}

// NextTTID returns the TTID the primary master gives a transaction
// beginning at now, given last, the last tid used (cluster.md §6.1): the
// tid of now, or the successor of last if the clock is not ahead of it.
// The result is always greater than last.
func NextTTID(last Tid, now time.Time) Tid {
	tid := TidFromTime(now)
	if tid <= last {
		tid = AddTid(last, 1)
	}
	return tid
}

// FinalTid returns the tid the primary master commits a transaction under,
// given last (the last tid used), the transaction's ttid, the number of
// partitions np and the time now (cluster.md §6.1, pitfall 1). The result
// is greater than last, congruent to ttid modulo np, and reached by moving
// backwards rather than forwards when both are possible. When the clock is
// behind and ttid is last itself, ttid is reused.
func FinalTid(last, ttid Tid, np uint32, now time.Time) Tid {
	tid := TidFromTime(now)
	if tid <= last {
		if ttid == last {
			return ttid
		}
		tid = AddTid(last, 1)
	}
	if np == 0 {
		return tid
	}
	want := uint64(ttid) % uint64(np)
	if d := int64(want) - int64(uint64(tid)%uint64(np)); d != 0 {
		tid = AddTid(tid, d)
		if tid <= last {
			tid = AddTid(tid, int64(np))
		}
	}
	return tid
}

// ParseTid parses a tid as neoctl accepts it (cluster.md §9.5): either
// "tid:<integer>" (case-insensitive prefix; decimal, 0x hexadecimal, 0o
// octal or 0b binary, as a Python int literal) or a float Unix timestamp
// converted with [TidFromUnix].
func ParseTid(s string) (Tid, error) {
	if len(s) >= 4 && strings.EqualFold(s[:4], "tid:") {
		n, err := parsePyInt(strings.TrimSpace(s[4:]))
		if err != nil {
			return 0, fmt.Errorf("parse tid %q: %w", s, err)
		}
		return Tid(n), nil
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		return 0, fmt.Errorf("parse tid %q: not tid:<integer> nor a timestamp", s)
	}
	if math.IsNaN(f) || f < 0 || f >= 1<<52 {
		return 0, fmt.Errorf("parse tid %q: timestamp out of range", s)
	}
	return TidFromUnix(f), nil
}

// parsePyInt parses a non-negative Python int literal (base 0) that fits
// in 64 bits. Unlike Go's base 0, a decimal with leading zeros is invalid.
func parsePyInt(s string) (uint64, error) {
	s = strings.TrimPrefix(s, "+")
	if len(s) > 1 && s[0] == '0' {
		switch s[1] {
		case 'x', 'X', 'o', 'O', 'b', 'B':
			s = "0" + strings.ToLower(s[1:2]) + s[2:]
		default:
			if strings.Trim(s, "0_") != "" {
				return 0, fmt.Errorf("invalid integer %q", s)
			}
			return 0, nil
		}
	}
	n, err := strconv.ParseUint(s, 0, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid integer %q", s)
	}
	return n, nil
}

// FormatDatetime formats t in UTC as Python's str(datetime) does:
// "YYYY-MM-DD HH:MM:SS", followed by ".ffffff" (truncated microseconds)
// unless they are zero.
func FormatDatetime(t time.Time) string {
	t = t.UTC()
	s := fmt.Sprintf("%04d-%02d-%02d %02d:%02d:%02d", t.Year(), int(t.Month()), t.Day(),
		t.Hour(), t.Minute(), t.Second())
	if us := t.Nanosecond() / 1e3; us != 0 {
		s += fmt.Sprintf(".%06d", us)
	}
	return s
}

// FormatTidTime formats the time of a tid as neoctl prints it after the
// hexadecimal tid in "print ids".
func FormatTidTime(tid Tid) string { return FormatDatetime(TidTime(tid)) }
