package sqlbackend

import (
	"context"
	"database/sql"
	"strings"
	"testing"

	"github.com/neogo/neo/proto"
)

// execLog records the statements of a Tx that only executes.
type execLog struct {
	Querier
	stmts []string
}

func (l *execLog) ExecContext(_ context.Context, q string, _ ...any) (sql.Result, error) {
	l.stmts = append(l.stmts, strings.Fields(q)[0]+" "+tableOf(q))
	return nil, nil
}

// tableOf is the table a statement writes.
func tableOf(q string) string {
	f := strings.Fields(q)
	for i, w := range f {
		if (w == "INTO" || w == "FROM") && i+1 < len(f) {
			return f[i+1]
		}
	}
	return "?"
}

// An unlock runs the statements of the rows its vote wrote, and all of
// them for a vote it did not see.
func TestUnlockTxRows(t *testing.T) {
	for _, c := range []struct {
		rows VoteRows
		ttid proto.Tid // unlocked as 2
		want string
	}{
		{AllRows, 1, "REPLACE obj,DELETE tobj,REPLACE trans,DELETE ttrans,REPLACE pack,DELETE pack"},
		{AllRows, 2, "REPLACE obj,DELETE tobj,REPLACE trans,DELETE ttrans"}, // the pack order keeps its id
		{VoteRows{Objects: true}, 1, "REPLACE obj,DELETE tobj"},
		{VoteRows{Objects: true, Meta: true}, 1, "REPLACE obj,DELETE tobj,REPLACE trans,DELETE ttrans"},
		{VoteRows{Meta: true, Pack: true}, 1, "REPLACE trans,DELETE ttrans,REPLACE pack,DELETE pack"},
	} {
		var l execLog
		if err := UnlockTx(t.Context(), &l, c.ttid, 2, c.rows); err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(l.stmts, ","); got != c.want {
			t.Errorf("unlock of %s as 2 with %+v: %s, want %s", c.ttid, c.rows, got, c.want)
		}
	}
}
