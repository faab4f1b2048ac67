// Package sqlbackend is the SQL that the SQL storage backends (packages
// sqlite and mysql) share: the queries of the logical schema of package
// backend that read and write it the same way in both, written in the SQL
// both servers take (`partition` quoted with backticks, REPLACE INTO, ?
// parameters). What differs — how a backend stores data, deletes rows
// returning their data ids, index hints — is in a [Dialect]; the hot
// paths a backend tunes (loads, votes) stay in its package.
package sqlbackend

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"

	"github.com/neogo/neo/proto"
	"github.com/neogo/neo/storage/backend"
)

// Querier is what reads need: *sql.DB, *sql.Tx, *sql.Conn or a backend's
// own transaction type.
type Querier interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

// Tx is a backend's write transaction.
type Tx interface {
	Querier
	ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
}

// Dialect is what differs between the SQL backends.
type Dialect struct {
	// Greatest is the scalar function of the greater of two values.
	Greatest string
	// PKHint and TidHint follow table obj (and its alias) in a FROM clause:
	// hints to use its primary key (partition, oid, tid) or its
	// (partition, tid, oid) index, where the server needs one.
	PKHint, TidHint string
	// DataSize is the expression of the size of the value of data row d.
	DataSize string
	// DeleteRows deletes the rows of table (obj or tobj) matching where
	// and returns their non-NULL data ids.
	DeleteRows func(ctx context.Context, tx Tx, table, where string, args ...any) ([]int64, error)
	// Prune deletes the data rows among ids that no obj or tobj row
	// references.
	Prune func(ctx context.Context, tx Tx, ids []int64) error
}

// NullTid is t as a column value: NULL for InvalidTid. Tids and oids
// stored are below 2^63 (proto.MaxTid), hence signed integers.
func NullTid(t proto.Tid) any {
	if t == proto.InvalidTid {
		return nil
	}
	return int64(t)
}

// TidOrInvalid is the tid of a nullable column.
func TidOrInvalid(n sql.NullInt64) proto.Tid {
	if !n.Valid {
		return proto.InvalidTid
	}
	return proto.Tid(n.Int64)
}

// IntList is a list of integers for an IN (...) clause.
func IntList[T ~uint32 | ~int64](xs []T) string {
	var b strings.Builder
	for i, x := range xs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(int64(x), 10))
	}
	return b.String()
}

// Blob stores nil as an empty value: the columns are NOT NULL.
func Blob(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// CollectDataIDs returns the non-NULL data ids a query selects.
func CollectDataIDs(ctx context.Context, q Querier, query string, args ...any) ([]int64, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id sql.NullInt64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		if id.Valid {
			ids = append(ids, id.Int64)
		}
	}
	return ids, rows.Err()
}

// Stats implements [backend.StatsReporter].
func Stats(ctx context.Context, q Querier) (backend.Stats, error) {
	var s backend.Stats
	err := q.QueryRowContext(ctx, `SELECT
		(SELECT COUNT(*) FROM trans), (SELECT COUNT(*) FROM obj), (SELECT COUNT(*) FROM data),
		(SELECT COUNT(*) FROM ttrans), (SELECT COUNT(*) FROM tobj)`).Scan(
		&s.Transactions, &s.Objects, &s.Data, &s.TempTransactions, &s.TempObjects)
	if err != nil {
		return s, fmt.Errorf("stats: %w", err)
	}
	return s, nil
}
