package search

import (
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestSwapDir(t *testing.T) {
	t.Parallel()
	write := func(t *testing.T, dir, name string) {
		t.Helper()
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(name), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name    string
		haveOld bool
	}{
		{name: "replaces an existing index", haveOld: true},
		{name: "creates a missing one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			parent := t.TempDir()
			dst, tmp := filepath.Join(parent, "index"), filepath.Join(parent, "index.reindex-1")
			if tt.haveOld {
				write(t, dst, "old")
			}
			write(t, tmp, "new")
			if err := swapDir(tmp, dst, slog.New(slog.DiscardHandler)); err != nil {
				t.Fatal(err)
			}
			entries, _ := os.ReadDir(dst)
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			if !slices.Equal(names, []string{"new"}) {
				t.Errorf("index holds %v, want [new]", names)
			}
			if left, _ := os.ReadDir(parent); len(left) != 1 {
				t.Errorf("left behind: %v", left)
			}
		})
	}
}

func TestReindexRefusesAnIndexInUse(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "index")
	if err := ensureNotInUse(dir); err != nil {
		t.Errorf("missing index: %v", err)
	}
	ix, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := ensureNotInUse(dir); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("open index: got %v, want an in-use error", err)
	}
	ix.Close()
	if err := ensureNotInUse(dir); err != nil {
		t.Errorf("closed index: %v", err)
	}
	garbage := t.TempDir()
	if err := os.WriteFile(filepath.Join(garbage, "index_meta.json"), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := ensureNotInUse(garbage); err != nil {
		t.Errorf("unreadable index: %v (replacing it is the point)", err)
	}
}
