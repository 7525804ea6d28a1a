package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func runCmd(t *testing.T, stdin string, env map[string]string, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, strings.NewReader(stdin), &out, &errOut, func(k string) string { return env[k] })
	return out.String() + errOut.String(), err
}

func TestVersionAndHelp(t *testing.T) {
	t.Parallel()
	if out, err := runCmd(t, "", nil, "version"); err != nil || !strings.HasPrefix(out, "mallhive ") {
		t.Fatalf("version: %q %v", out, err)
	}
	if out, err := runCmd(t, "", nil, "help"); err != nil || !strings.Contains(out, "mallhive migrate") {
		t.Fatalf("help: %q %v", out, err)
	}
	if _, err := runCmd(t, "", nil, "frobnicate"); err == nil {
		t.Fatal("unknown command accepted")
	}
	if out, err := runCmd(t, "", nil, "serve", "--help"); err == nil || !strings.Contains(out, "-data-dir") {
		t.Fatalf("serve --help: %q %v", out, err)
	}
}

func TestMigrateAndCreateAdmin(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if out, err := runCmd(t, "", nil, "migrate", "--data-dir="+dir); err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	// Password from standard input.
	out, err := runCmd(t, "a long admin passphrase\n", nil, "users", "create-admin", "--email=root@example.com", "--data-dir="+dir)
	if err != nil || !strings.Contains(out, "created admin root@example.com") {
		t.Fatalf("create-admin: %q %v", out, err)
	}
	// The same email again is refused, and so is a weak password.
	env := map[string]string{"MALLHIVE_ADMIN_PASSWORD": "a long admin passphrase", "MALLHIVE_DATA_DIR": dir}
	if _, err := runCmd(t, "", env, "users", "create-admin", "--email=root@example.com"); err == nil {
		t.Fatal("duplicate admin created")
	}
	env["MALLHIVE_ADMIN_PASSWORD"] = "password"
	if _, err := runCmd(t, "", env, "users", "create-admin", "--email=other@example.com"); err == nil {
		t.Fatal("weak password accepted")
	}
	if _, err := runCmd(t, "", nil, "users", "create-admin", "--email=x@example.com", "--data-dir="+dir); err == nil {
		t.Fatal("no password accepted")
	}
}

func TestOAuthCreateClient(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	out, err := runCmd(t, "", nil, "oauth", "create-client", "--name=Shop app", "--redirect-uri=https://app.example/cb", "--data-dir="+dir)
	if err != nil || !strings.Contains(out, "client_id: ") || !strings.Contains(out, "client_secret: ") {
		t.Fatalf("confidential client: %q %v", out, err)
	}
	out, err = runCmd(t, "", nil, "oauth", "create-client", "--name=Phone app", "--redirect-uri=com.example.app:/cb", "--public", "--data-dir="+dir)
	if err != nil || strings.Contains(out, "client_secret") {
		t.Fatalf("public client: %q %v", out, err)
	}
	if _, err := runCmd(t, "", nil, "oauth", "create-client", "--name=Bad", "--redirect-uri=http://evil.example/cb", "--data-dir="+dir); err == nil {
		t.Fatal("plain-http redirect URI accepted")
	}
}
