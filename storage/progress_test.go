package storage

import (
	"testing"
	"time"

	"github.com/neogo/neo/proto"
)

func TestProgress(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 20, 0, 0, 0, time.UTC)
	tid := func(d time.Duration) proto.Tid { return proto.TidFromTime(t0.Add(d)) }
	for _, c := range []struct {
		name  string
		p     Progress
		ratio float64
		lag   time.Duration
	}{
		{"nothing known", Progress{To: tid(time.Hour)}, 0, 0},
		{"first tid known", Progress{From: tid(0), To: tid(time.Hour)}, 0, time.Hour},
		{"a quarter", Progress{From: tid(0), Pos: tid(15 * time.Minute), To: tid(time.Hour)}, 0.25, 45 * time.Minute},
		{"done", Progress{From: tid(0), Pos: tid(time.Hour), To: tid(time.Hour)}, 1, 0},
		{"resumed past the end", Progress{From: tid(2 * time.Hour), Pos: tid(2 * time.Hour), To: tid(time.Hour)}, 1, 0},
		{"check, second pass at half", Progress{From: tid(0), Pos: tid(30 * time.Minute), To: tid(time.Hour), Pass: 1, Passes: 2}, 0.75, 30 * time.Minute},
	} {
		if r := c.p.Ratio(); r < c.ratio-1e-6 || r > c.ratio+1e-6 {
			t.Errorf("%s: Ratio %v, want %v", c.name, r, c.ratio)
		}
		if l := c.p.Lag(); l < c.lag-time.Millisecond || l > c.lag+time.Millisecond {
			t.Errorf("%s: Lag %v, want %v", c.name, l, c.lag)
		}
	}
}
