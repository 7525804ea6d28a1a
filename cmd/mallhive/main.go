// Command mallhive runs the MallHive marketplace: every service in one
// process (the default), or the services named by --services.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/mallhive/mallhive/internal/app"
	"github.com/mallhive/mallhive/internal/auth"
	"github.com/mallhive/mallhive/internal/platform/config"
	"github.com/mallhive/mallhive/internal/platform/telemetry"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "mallhive:", err)
		}
		os.Exit(1)
	}
}

const usage = `mallhive runs the MallHive marketplace.

Usage:
  mallhive [serve] [flags]      run services (default: all of them, embedded stores, on :8080)
  mallhive migrate [flags]      apply database migrations of the selected services and exit
  mallhive seed --url=URL       fill a running marketplace with demo data through its API
  mallhive users create-admin   create an administrator account
  mallhive oauth create-client  register an OAuth 2.1 / OpenID Connect client app
  mallhive search reindex       rebuild the search index from the event streams (server stopped)
  mallhive version              print the version

Every flag can also be set as an environment variable: --data-dir is
MALLHIVE_DATA_DIR, --auth.access-ttl is MALLHIVE_AUTH_ACCESS_TTL.
Run "mallhive <command> --help" for a command's flags.
`

// run is main without the process-global parts, so tests can drive it.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) error {
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(ctx, args, stdout, stderr, getenv)
	case "migrate":
		return migrate(ctx, args, stdout, stderr, getenv)
	case "users":
		return users(ctx, args, stdin, stdout, stderr, getenv)
	case "search":
		return searchCmd(ctx, args, stdout, stderr, getenv)
	case "seed":
		return seedCmd(ctx, args, stdout, stderr, getenv)
	case "oauth":
		return oauthCmd(ctx, args, stdout, stderr, getenv)
	case "version":
		fmt.Fprintln(stdout, "mallhive", app.Version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
}

// loadConfig parses flags and MALLHIVE_* variables for a command.
func loadConfig(name string, args []string, stderr io.Writer, getenv func(string) string) (*app.Config, *flag.FlagSet, error) {
	fs := flag.NewFlagSet("mallhive "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg app.Config
	cfg.RegisterFlags(fs)
	if err := config.Parse(fs, args, getenv); err != nil {
		return nil, nil, err
	}
	return &cfg, fs, nil
}

func newLogger(w io.Writer, cfg *app.Config) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.LogLevel))
	return telemetry.NewLogger(w, lvl)
}

func serve(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	cfg, _, err := loadConfig("serve", args, stderr, getenv)
	if err != nil {
		return err
	}
	log := newLogger(stdout, cfg)
	shutdownTracing, err := telemetry.SetupTracing(ctx, "mallhive", app.Version)
	if err != nil {
		return fmt.Errorf("tracing: %w", err)
	}
	defer shutdownTracing(context.WithoutCancel(ctx))
	log.Info("starting", "config", cfg)
	p, err := app.Start(ctx, cfg, log, getenv)
	if err != nil {
		return err
	}
	return p.Serve(ctx, getenv, stderr)
}

func migrate(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	cfg, _, err := loadConfig("migrate", args, stderr, getenv)
	if err != nil {
		return err
	}
	log := newLogger(stdout, cfg)
	return app.Migrate(ctx, cfg, log, getenv)
}

const usersUsage = `usage: mallhive users create-admin --email=EMAIL --name=NAME [flags]
The password is read from MALLHIVE_ADMIN_PASSWORD, or else from the first
line of standard input. The admin enrols two-factor sign-in at first login.`

func users(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 || args[0] != "create-admin" {
		fmt.Fprintln(stderr, usersUsage)
		return errors.New("unknown users command")
	}
	fs := flag.NewFlagSet("mallhive users create-admin", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg app.Config
	cfg.RegisterFlags(fs)
	email := fs.String("email", "", "the admin's email address")
	name := fs.String("name", "Administrator", "the admin's display name")
	if err := config.Parse(fs, args[1:], getenv); err != nil {
		return err
	}
	password := getenv("MALLHIVE_ADMIN_PASSWORD")
	if password == "" {
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && line == "" {
			return errors.New("no password: set MALLHIVE_ADMIN_PASSWORD or pipe it on standard input")
		}
		password = strings.TrimRight(line, "\r\n")
	}
	if err := app.CreateAdmin(ctx, &cfg, getenv, *email, password, *name); err != nil {
		return fmt.Errorf("create admin: %w", err)
	}
	fmt.Fprintf(stdout, "created admin %s; sign in and enrol an authenticator app to finish\n", *email)
	return nil
}

func searchCmd(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 || args[0] != "reindex" {
		fmt.Fprintln(stderr, "usage: mallhive search reindex [flags]")
		return errors.New("unknown search command")
	}
	cfg, _, err := loadConfig("search reindex", args[1:], stderr, getenv)
	if err != nil {
		return err
	}
	return app.Reindex(ctx, cfg, newLogger(stderr, cfg), stdout)
}

func seedCmd(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("mallhive seed", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg app.Config
	cfg.RegisterFlags(fs)
	url := fs.String("url", "http://localhost:8080", "the running marketplace to fill (its gateway)")
	if err := config.Parse(fs, args, getenv); err != nil {
		return err
	}
	summary, err := app.Seed(ctx, &cfg, getenv, strings.TrimRight(*url, "/"), stderr)
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	fmt.Fprintln(stdout, summary)
	return nil
}

func oauthCmd(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 || args[0] != "create-client" {
		fmt.Fprintln(stderr, "usage: mallhive oauth create-client --name=NAME --redirect-uri=URI [--redirect-uri=URI] [--grant=TYPE] [--scope=SCOPE] [--public]")
		return errors.New("unknown oauth command")
	}
	fs := flag.NewFlagSet("mallhive oauth create-client", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg app.Config
	cfg.RegisterFlags(fs)
	var reg auth.ClientRegistration
	fs.StringVar(&reg.Name, "name", "", "the app's name")
	fs.Func("redirect-uri", "an exact redirect URI (repeat for more)", func(v string) error { reg.RedirectURIs = append(reg.RedirectURIs, v); return nil })
	fs.Func("grant", "authorization_code, refresh_token or client_credentials (repeat; default: the first two)", func(v string) error { reg.GrantTypes = append(reg.GrantTypes, v); return nil })
	fs.Func("scope", "an allowed scope (repeat; default: openid profile email)", func(v string) error { reg.Scopes = append(reg.Scopes, v); return nil })
	fs.BoolVar(&reg.Public, "public", false, "a public client (no secret: native and browser apps; PKCE only)")
	if err := config.Parse(fs, args[1:], getenv); err != nil {
		return err
	}
	id, secret, err := app.CreateOAuthClient(ctx, &cfg, getenv, reg)
	if err != nil {
		return fmt.Errorf("create client: %w", err)
	}
	fmt.Fprintf(stdout, "client_id: %s\n", id)
	if secret != "" {
		fmt.Fprintf(stdout, "client_secret: %s\n(shown once; store it now)\n", secret)
	}
	return nil
}
