//go:build integration

package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/neogo/neo/internal/freeport"
	"github.com/neogo/neo/internal/smtptest"
	"github.com/neogo/neo/proto"
)

// Our upstream admin monitoring our backup cluster mails its health
// (cluster.md §9.4) to an SMTP server: the backup's summary with its lag,
// then, when the backup leaves backup mode, a warning naming it.
func TestBackupMonitorMail(t *testing.T) {
	up := newSLCluster(t, "go", 1, 0, 4)
	bk, last := caughtUpBackup(t, up, 3, "go", 1, 0)
	smtp := smtptest.Start(t, bkWait)
	mon := fmt.Sprintf("127.0.0.1:%d", freeport.Ports(t, 1)[0])
	up.node("monitor", "go", "neoadmin", "--bind", mon, "--monitor-backup", bk.name,
		"--monitor-email", "ops@example.com", "--smtp", smtp.Addr)

	// waitMail reads the mails until one has subject and a body
	// containing body.
	waitMail := func(what, subject, body string) {
		t.Helper()
		var seen []string
		deadline := time.After(bkWait)
		for {
			select {
			case m := <-smtp.Mails:
				if m.Header("Subject") == subject && strings.Contains(m.Body(), body) {
					return
				}
				seen = append(seen, m.Data)
			case <-deadline:
				t.Fatalf("%s: no mail with subject %q and body containing %q in %v; mails:\n%s",
					what, subject, body, bkWait, strings.Join(seen, "\n----\n"))
			}
		}
	}
	upLine := fmt.Sprintf("RUNNING; UP_TO_DATE=4; ltid=%016x (%s)\r\n", uint64(last), proto.FormatTidTime(last))
	waitMail("backup in sync", "NEO monitoring: OK",
		upLine+fmt.Sprintf("\r\n%s\r\n    BACKINGUP; UP_TO_DATE=4; ltid=%016x; lag=0.0\r\n", bk.name, uint64(last)))

	bk.setState(proto.STOPPING_BACKUP)
	waitMail("backup RUNNING", "NEO monitoring: WARNING ("+bk.name+")",
		upLine+fmt.Sprintf("\r\n%s\r\n    RUNNING; UP_TO_DATE=4; ltid=%016x (", bk.name, uint64(last)))
}
