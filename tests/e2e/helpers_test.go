package e2e

import (
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
)

// signUp registers an account and returns a client signed in as it.
func signUp(t *testing.T, base, email, role string, extra map[string]any) *client {
	t.Helper()
	c := &client{t: t, base: base}
	body := map[string]any{"email": email, "password": "e2e passphrase " + email, "name": "E2E " + role, "role": role}
	for k, v := range extra {
		body[k] = v
	}
	c.do("POST", "/api/v1/auth/register", body).expect(t, http.StatusCreated)
	signIn(t, c, email, "e2e passphrase "+email)
	return c
}

func signIn(t *testing.T, c *client, email, password string) {
	t.Helper()
	var login struct {
		AccessToken string `json:"access_token"`
	}
	c.do("POST", "/api/v1/auth/login", map[string]any{"email": email, "password": password}).expect(t, http.StatusOK).decode(t, &login)
	if login.AccessToken == "" {
		t.Fatal("no access token")
	}
	c.token = login.AccessToken
}

// admin creates an admin with the CLI in the data dir, enrols TOTP and
// returns a signed-in client.
func admin(t *testing.T, base, dataDir string) *client {
	t.Helper()
	return adminWith(t, base, "--data-dir="+dataDir)
}

// adminWith is admin for any store the CLI flags name (--database-url=…).
func adminWith(t *testing.T, base string, storeFlags ...string) *client {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"users", "create-admin", "--email=admin@e2e.test"}, storeFlags...)...)
	cmd.Stdin = strings.NewReader("an admin passphrase for e2e\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("create-admin: %v\n%s", err, out)
	}
	c := &client{t: t, base: base}
	var challenge struct {
		Token string `json:"mfa_token"`
	}
	c.do("POST", "/api/v1/auth/login", map[string]any{"email": "admin@e2e.test", "password": "an admin passphrase for e2e"}).
		expect(t, http.StatusOK).decode(t, &challenge)
	var enrol struct {
		Secret string `json:"secret"`
	}
	c.do("POST", "/api/v1/auth/login/mfa/enroll", map[string]any{"mfa_token": challenge.Token}).expect(t, http.StatusOK).decode(t, &enrol)
	code, err := totp.GenerateCode(enrol.Secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var tokens struct {
		AccessToken string `json:"access_token"`
	}
	c.do("POST", "/api/v1/auth/login/mfa/enroll/confirm", map[string]any{"mfa_token": challenge.Token, "code": code}).
		expect(t, http.StatusOK).decode(t, &tokens)
	c.token = tokens.AccessToken
	return c
}
