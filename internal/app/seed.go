package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"

	"github.com/mallhive/mallhive/internal/seed"
)

// demoAccountsFile keeps the demo sign-in details (and the demo admin's
// TOTP secret) so every start can print them again. Demo data only.
const demoAccountsFile = "demo-accounts.txt"

// Seed fills the marketplace at baseURL with demo data through its public
// API. The admin is created directly in the auth database (as `mallhive
// users create-admin` does). It returns the demo accounts' summary.
func Seed(ctx context.Context, cfg *Config, getenv func(string) string, baseURL string, progress io.Writer) (string, error) {
	createAdmin := func(ctx context.Context, email, password, name string) error {
		return CreateAdmin(ctx, cfg, getenv, email, password, name)
	}
	acc, err := seed.Run(ctx, baseURL, createAdmin, seed.Options{Products: cfg.SeedProducts}, progress)
	if err != nil {
		return "", err
	}
	return acc.Summary(), nil
}

// seedOnFirstStart seeds an embedded marketplace that runs every service
// the seed needs, once per data dir, in the background; later starts print
// the demo accounts again.
func (p *Process) seedOnFirstStart(ctx context.Context, getenv func(string) string, progress io.Writer) {
	cfg := p.cfg
	needs := []string{"auth", "catalog", "cart", "gateway"}
	if !cfg.Seed || !cfg.Embedded() || !containsAll(p.names, needs) {
		return
	}
	file := filepath.Join(cfg.DataDir, demoAccountsFile)
	if b, err := os.ReadFile(file); err == nil {
		fmt.Fprintln(progress, string(b))
		return
	}
	go func() {
		p.log.Info("seeding demo data", "products", cfg.SeedProducts)
		summary, err := Seed(ctx, cfg, getenv, p.URL, progress)
		switch {
		case errors.Is(err, seed.ErrAlreadySeeded):
			p.log.Warn("demo data was seeded before but its accounts file is gone", "file", file)
			return
		case err != nil:
			if ctx.Err() == nil {
				p.log.Error("seeding demo data failed", "err", err)
			}
			return
		}
		if err := os.WriteFile(file, []byte(summary), 0o600); err != nil {
			p.log.Warn("could not keep the demo accounts", "file", file, "err", err)
		}
		p.log.Info("demo data ready", slog.String("accounts", file))
		fmt.Fprintln(progress, summary)
	}()
}

func containsAll(have, want []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}
