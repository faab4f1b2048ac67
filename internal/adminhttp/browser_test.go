package adminhttp_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/neogo/neo/client"
	"github.com/neogo/neo/internal/neotest"
)

// chromium returns the path of a Chromium to run headless: $NEO_CHROMIUM,
// else chromium or chromium-browser on PATH. CI installs Debian's
// chromium (.ci/run); without one, the browser tests are skipped.
func chromium(t *testing.T) string {
	if p := os.Getenv("NEO_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no chromium on PATH (apt-get install chromium, or set NEO_CHROMIUM): the dashboard is not tried in a browser")
	return ""
}

// render loads url in headless Chromium, lets its script run for up to
// 5 s of virtual time, saves a screenshot of a phone-sized window as
// name.png in the test's artifact directory (go test -artifacts keeps
// it) and returns the rendered DOM.
func render(t *testing.T, browser, url, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	profile := t.TempDir()
	args := []string{"--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
		"--user-data-dir=" + profile, "--virtual-time-budget=5000", "--window-size=412,900"}
	shot := filepath.Join(t.ArtifactDir(), name+".png")
	if out, err := exec.CommandContext(ctx, browser, append(args, "--screenshot="+shot, url)...).CombinedOutput(); err != nil {
		t.Fatalf("chromium --screenshot %s: %v\n%s", url, err, out)
	}
	dom, err := exec.CommandContext(ctx, browser, append(args, "--dump-dom", url)...).Output()
	if err != nil {
		t.Fatalf("chromium --dump-dom %s: %v", url, err)
	}
	t.Logf("%s: screenshot %s", url, shot)
	return string(dom)
}

// cells returns the state classes of node nid's cells in the rendered
// partition table, in row order.
func cells(dom, nid string) []string {
	re := regexp.MustCompile(`<td class="([A-Z_]+)" title="[^"]*" data-nid="` + regexp.QuoteMeta(nid) + `">`)
	var out []string
	for _, m := range re.FindAllStringSubmatch(dom, -1) {
		out = append(out, m[1])
	}
	return out
}

// TestDashboardInBrowser loads the dashboard in headless Chromium: it
// shows RUNNING, every node and the partition table; once a storage is
// stopped, its node DOWN and its cells OUT_OF_DATE.
func TestDashboardInBrowser(t *testing.T) {
	browser := chromium(t)
	c, _, url := adminCluster(t)

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cl := c.Open(t, client.Config{})
	oid, err := cl.NewOID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := neotest.Commit(ctx, cl, oid, 0, []byte("page")); err != nil {
		t.Fatal(err)
	}

	dom := render(t, browser, url+"/", "running")
	if !regexp.MustCompile(`last commit 0x[0-9a-f]{16} \([-0-9 :.]+ UTC, \d+ s ago\)`).MatchString(dom) {
		t.Errorf("page does not show the last commit:\n%s", dom)
	}
	if !strings.Contains(dom, `<span id="state" class="RUNNING">RUNNING</span>`) {
		t.Errorf("page does not show RUNNING:\n%s", dom)
	}
	for _, nid := range []string{"M1", "S1", "S2", "A1"} {
		if !strings.Contains(dom, "<td>"+nid+"</td>") {
			t.Errorf("node %s not listed:\n%s", nid, dom)
		}
	}
	for _, nid := range []string{"S1", "S2"} {
		if got := cells(dom, nid); strings.Join(got, " ") != "UP_TO_DATE UP_TO_DATE UP_TO_DATE UP_TO_DATE" {
			t.Errorf("cells of %s: %v, want 4 UP_TO_DATE", nid, got)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// Stop a storage; the API tells which node it was, once its node is
	// DOWN and its cells OUT_OF_DATE (the admin applies the two changes
	// apart): only then is the page expected to show both.
	c.Stop(neotest.Storage(1))
	getJSON := func(path string, v any) {
		resp, err := http.Get(url + "/api/v1/" + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	down := ""
	deadline := time.Now().Add(30 * time.Second)
	for {
		var nodes struct{ Nodes []struct{ NID, State string } }
		var pt struct {
			Rows []struct{ Cells []struct{ NID, State string } }
		}
		getJSON("nodes?type=STORAGE", &nodes)
		getJSON("pt", &pt)
		down = ""
		for _, n := range nodes.Nodes {
			if n.State == "DOWN" {
				down = n.NID
			}
		}
		outdated := 0
		for _, r := range pt.Rows {
			for _, c := range r.Cells {
				if c.NID == down && c.State == "OUT_OF_DATE" {
					outdated++
				}
			}
		}
		if down != "" && outdated == len(pt.Rows) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("30 s after the stop: nodes %v, pt %v", nodes, pt)
		}
		time.Sleep(50 * time.Millisecond)
	}
	dom = render(t, browser, url+"/", "storage-down")
	if want := fmt.Sprintf(`<td>%s</td><td>STORAGE</td><td class="node-DOWN">DOWN</td>`, down); !strings.Contains(dom, want) {
		t.Errorf("page does not show %s DOWN:\n%s", down, dom)
	}
	if got := cells(dom, down); strings.Join(got, " ") != "OUT_OF_DATE OUT_OF_DATE OUT_OF_DATE OUT_OF_DATE" {
		t.Errorf("cells of the stopped %s: %v, want 4 OUT_OF_DATE", down, got)
	}
	// Its cells are to be replicated again: the replication bar.
	replBar := regexp.MustCompile(`<div class="bar" data-kind="replication"><label>Replication: (\d+) of (\d+) cells up to date</label><progress max="1" value="[0-9.]+"></progress>`)
	if m := replBar.FindStringSubmatch(dom); m == nil || m[1] != "4" || m[2] != "8" {
		t.Errorf("page does not show the replication bar at 4 of 8 cells (%v):\n%s", m, dom)
	}

	// The storage back: it catches up and the bar goes.
	c.Restart(neotest.Storage(1))
	deadline = time.Now().Add(30 * time.Second)
	for {
		var pt struct {
			Rows []struct{ Cells []struct{ NID, State string } }
		}
		getJSON("pt", &pt)
		n := 0
		for _, r := range pt.Rows {
			for _, c := range r.Cells {
				if c.State == "UP_TO_DATE" {
					n++
				}
			}
		}
		if n == 8 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("30 s after the restart: pt %v", pt)
		}
		time.Sleep(50 * time.Millisecond)
	}
	dom = render(t, browser, url+"/", "storage-back")
	if replBar.MatchString(dom) {
		t.Errorf("replication bar still shown once every cell is UP_TO_DATE:\n%s", dom)
	}
}

// TestDashboardAction runs a write action from the page, as a user on a
// phone would (Chromium driven over its DevTools protocol, at a phone's
// viewport): the check of every partition, confirmed in the page, is
// accepted from loopback and its answer shown.
func TestDashboardAction(t *testing.T) {
	browser := chromium(t)
	_, _, url := adminCluster(t)
	alloc, cancel := chromedp.NewExecAllocator(t.Context(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser), chromedp.NoSandbox, chromedp.UserDataDir(t.TempDir()))...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(alloc)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	type css = chromedp.CSS
	step := func(what string, a chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, a); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(sel css) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Text(sel))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return v
	}
	step("phone viewport", chromedp.EmulateViewport(412, 900, chromedp.EmulateMobile))
	step("load", chromedp.Navigate(url+"/"))
	step("RUNNING shown", chromedp.WaitVisible(css(`#state.RUNNING`)))
	step("check submitted", chromedp.Click(css(`form[data-path="check"] button`)))
	step("confirmation shown", chromedp.WaitVisible(css(`#confirm-yes`)))
	confirm := text(`#confirm-text`)
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(90))
	if err != nil {
		t.Fatal(err)
	}
	step("confirmed", chromedp.Click(css(`#confirm-yes`)))
	step("answer shown", chromedp.WaitVisible(css(`#result.ok`)))
	result := text(`#result`)
	if err := os.WriteFile(filepath.Join(t.ArtifactDir(), "confirm-check.jpg"), shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("confirmation %q, answer %q", confirm, result)
	if confirm != "Really check the replicas?" || !strings.HasPrefix(result, "check: ") {
		t.Errorf("confirmation %q, result %q", confirm, result)
	}
}
