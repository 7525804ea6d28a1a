package events_test

import (
	"os"

	"github.com/mallhive/mallhive/internal/platform/sqldb"
)

var counterMigrations = sqldb.Migrations{Name: "counter", FS: os.DirFS("testdata/counter")}
