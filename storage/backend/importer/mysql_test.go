package importer

import (
	"fmt"
	"strings"
	"testing"

	"github.com/neogo/neo/internal/mysqltest"
	"github.com/neogo/neo/pickleref"
	"github.com/neogo/neo/proto"
	_ "github.com/neogo/neo/storage/backend/mysql" // the destination
)

// TestMySQLDestination imports into MySQL, on the server whose socket
// NEO_MYSQL_SOCKET names (`make mysql` starts one): stopped halfway, the
// reads equal FileStorage's; reopened, the import resumes and ends with
// every transaction and record once.
func TestMySQLDestination(t *testing.T) {
	const name = "neot_importer"
	sock, _ := mysqltest.DB(t, name)
	conf := strings.Replace(singleConf, "adapter=SQLite\ndatabase=%s/neo.sqlite", fmt.Sprintf("adapter=MySQL\ndatabase=root@%s%s\n#%%s", name, sock), 1)

	h := history(0x03e0000000000000)
	e := newEnv(t, conf, map[string][]txn{"root": h})
	o := newOracle(t, e.fs["root"], pickleref.Shift{})
	im := e.open(h[10].tid)
	waitImported(t, im, h[9].tid)
	checkAll(t, e.ctx, im, o, nil)
	im.Close()
	im = e.open(0)
	defer im.Close()
	if err := im.Wait(e.ctx); err != nil {
		t.Fatal(err)
	}
	checkAll(t, e.ctx, im, o, nil)
	nrec := 0
	for _, x := range h {
		nrec += len(x.recs)
	}
	st, err := im.Stats(e.ctx)
	if err != nil || st.Transactions != len(h) || st.Objects != nrec {
		t.Errorf("stats %+v %v, want %d transactions %d objects", st, err, len(h), nrec)
	}
	if tid, done := im.Imported(); !done || tid != proto.Tid(h[len(h)-1].tid) {
		t.Errorf("imported %v %v, want %v true", tid, done, h[len(h)-1].tid)
	}
}
