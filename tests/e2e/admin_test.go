package e2e

import (
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
)

// TestAdminCreatedFromTheCLIMustEnrolTwoFactor: `mallhive users
// create-admin`, then the admin's first login demands TOTP enrolment, and
// only after it may the admin manage users; a buyer may not.
func TestAdminCreatedFromTheCLIMustEnrolTwoFactor(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cmd := exec.Command(binary, "users", "create-admin", "--email=root@example.com", "--name=Root", "--data-dir="+dir)
	cmd.Stdin = strings.NewReader("an admin passphrase for e2e\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("create-admin: %v\n%s", err, out)
	}
	p := start(t, nil, "--data-dir="+dir, "--seed=false")
	c := &client{t: t, base: p.URL}

	var challenge struct {
		Required bool   `json:"mfa_enrollment_required"`
		Token    string `json:"mfa_token"`
	}
	c.do("POST", "/api/v1/auth/login", map[string]any{"email": "root@example.com", "password": "an admin passphrase for e2e"}).
		expect(t, http.StatusOK).decode(t, &challenge)
	if !challenge.Required || challenge.Token == "" {
		t.Fatalf("admin login without 2FA: want an enrolment challenge, got %+v", challenge)
	}
	// The enrolment token opens nothing else.
	c.token = challenge.Token
	c.do("GET", "/api/v1/admin/users", nil).expect(t, http.StatusUnauthorized)
	c.token = ""

	var enrol struct {
		Secret string `json:"secret"`
	}
	c.do("POST", "/api/v1/auth/login/mfa/enroll", map[string]any{"mfa_token": challenge.Token}).expect(t, http.StatusOK).decode(t, &enrol)
	code, err := totp.GenerateCode(enrol.Secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var tokens struct {
		AccessToken   string   `json:"access_token"`
		RecoveryCodes []string `json:"recovery_codes"`
	}
	c.do("POST", "/api/v1/auth/login/mfa/enroll/confirm", map[string]any{"mfa_token": challenge.Token, "code": code}).
		expect(t, http.StatusOK).decode(t, &tokens)
	if tokens.AccessToken == "" || len(tokens.RecoveryCodes) != 10 {
		t.Fatalf("enrolment: %+v", tokens)
	}

	// A buyer registers; the buyer cannot list users, the admin can.
	buyer := &client{t: t, base: p.URL}
	buyer.do("POST", "/api/v1/auth/register", map[string]any{"email": "b@example.com", "password": "buyer passphrase e2e", "name": "B"}).expect(t, http.StatusCreated)
	var login struct {
		AccessToken string `json:"access_token"`
	}
	buyer.do("POST", "/api/v1/auth/login", map[string]any{"email": "b@example.com", "password": "buyer passphrase e2e"}).expect(t, http.StatusOK).decode(t, &login)
	buyer.token = login.AccessToken
	buyer.do("GET", "/api/v1/admin/users", nil).expect(t, http.StatusForbidden)

	c.token = tokens.AccessToken
	list := c.do("GET", "/api/v1/admin/users", nil).expect(t, http.StatusOK)
	if !strings.Contains(string(list.Body), "b@example.com") {
		t.Fatalf("admin list lacks the buyer: %s", list.Body)
	}
}
