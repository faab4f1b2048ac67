package sqlite

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
)

// driverStmt is a prepared statement of the driver itself: through it a
// statement runs without database/sql, which checks and converts every
// argument, and copies every value it reads, at each call.
type driverStmt interface {
	driver.Stmt
	driver.StmtExecContext
	driver.StmtQueryContext
}

// driverStmts caches the driver statements of one driver connection,
// which the caller holds (sql.Conn.Raw) whenever it uses them.
type driverStmts map[string]driverStmt

var errNoDriverStmt = errors.New("driver without prepared statements")

// prepare returns the statement of q on dc, the connection of the cache,
// preparing it on first use; errNoDriverStmt if the driver has no
// prepared statements of its own.
func (s *driverStmts) prepare(ctx context.Context, dc any, q string) (driverStmt, error) {
	if st, ok := (*s)[q]; ok {
		return st, nil
	}
	p, ok := dc.(driver.ConnPrepareContext)
	if !ok {
		return nil, errNoDriverStmt
	}
	ds, err := p.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	st, ok := ds.(driverStmt)
	if !ok {
		ds.Close()
		return nil, errNoDriverStmt
	}
	if *s == nil {
		*s = driverStmts{}
	}
	(*s)[q] = st
	return st, nil
}

// close closes the statements; the caller holds their connection.
func (s driverStmts) close() error {
	var first error
	for q, st := range s {
		if err := st.Close(); err != nil && first == nil {
			first = fmt.Errorf("close statement %q: %w", q, err)
		}
	}
	clear(s)
	return first
}
