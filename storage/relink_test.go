package storage

import (
	"testing"
	"time"
)

func TestRelinkPause(t *testing.T) {
	var p relinkPause
	if d := p.after(5 * time.Second); d != 0 {
		t.Errorf("after a healthy link: %v; want no pause", d)
	}
	want := []time.Duration{20 * time.Millisecond, 40 * time.Millisecond, 80 * time.Millisecond, 160 * time.Millisecond,
		250 * time.Millisecond, 250 * time.Millisecond}
	for i, w := range want {
		if d := p.after(time.Millisecond); d != w {
			t.Errorf("after short link %d: %v; want %v", i+1, d, w)
		}
	}
	if d := p.after(relinkHealthy); d != 0 {
		t.Errorf("after a link of %v: %v; want no pause", relinkHealthy, d)
	}
	if d := p.after(0); d != relinkFirst {
		t.Errorf("first short link after a healthy one: %v; want %v", d, relinkFirst)
	}
}
