package sqlite

import (
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)
