package e2e

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

type tokenPair struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
	User         struct {
		ID    string   `json:"id"`
		Email string   `json:"email"`
		Roles []string `json:"roles"`
	} `json:"user"`
}

// authJourney is the same buyer journey in both shapes: register, login,
// read the profile, refresh (and see a spent token revoke its family),
// log out.
func authJourney(t *testing.T, base string) {
	t.Helper()
	c := &client{t: t, base: base}
	email := fmt.Sprintf("buyer-%d@example.com", time.Now().UnixNano())
	password := "correct horse battery staple"

	reg := c.do("POST", "/api/v1/auth/register", map[string]any{"email": email, "password": password, "name": "Ada Buyer"})
	reg.expect(t, http.StatusCreated)
	if len(reg.Body) == 0 || strings.Contains(string(reg.Body), "password") {
		t.Fatalf("register answer leaks or lacks the user: %s", reg.Body)
	}

	var login tokenPair
	c.do("POST", "/api/v1/auth/login", map[string]any{"email": email, "password": password}).expect(t, http.StatusOK).decode(t, &login)
	if login.TokenType != "Bearer" || login.AccessToken == "" || login.RefreshToken == "" || login.ExpiresIn <= 0 {
		t.Fatalf("login answer: %+v", login)
	}
	c.do("POST", "/api/v1/auth/login", map[string]any{"email": email, "password": "wrong password here"}).expect(t, http.StatusUnauthorized)

	c.do("GET", "/api/v1/users/me", nil).expect(t, http.StatusUnauthorized)
	c.token = login.AccessToken
	var me struct {
		ID    string `json:"id"`
		Email string `json:"email"`
		Name  string `json:"name"`
	}
	c.do("GET", "/api/v1/users/me", nil).expect(t, http.StatusOK).decode(t, &me)
	if me.Email != email || me.Name != "Ada Buyer" || me.ID != login.User.ID {
		t.Fatalf("me: %+v", me)
	}
	c.token = ""

	var refreshed tokenPair
	c.do("POST", "/api/v1/auth/refresh", map[string]any{"refresh_token": login.RefreshToken}).expect(t, http.StatusOK).decode(t, &refreshed)
	if refreshed.RefreshToken == login.RefreshToken || refreshed.AccessToken == "" {
		t.Fatal("refresh did not rotate the refresh token")
	}
	// Presenting the spent token again is theft: the whole family dies.
	c.do("POST", "/api/v1/auth/refresh", map[string]any{"refresh_token": login.RefreshToken}).expect(t, http.StatusUnauthorized)
	c.do("POST", "/api/v1/auth/refresh", map[string]any{"refresh_token": refreshed.RefreshToken}).expect(t, http.StatusUnauthorized)

	var second tokenPair
	c.do("POST", "/api/v1/auth/login", map[string]any{"email": email, "password": password}).expect(t, http.StatusOK).decode(t, &second)
	c.do("POST", "/api/v1/auth/logout", map[string]any{"refresh_token": second.RefreshToken}).expect(t, http.StatusNoContent)
	c.do("POST", "/api/v1/auth/refresh", map[string]any{"refresh_token": second.RefreshToken}).expect(t, http.StatusUnauthorized)

	// Bad input is a problem document, never a 500.
	bad := c.do("POST", "/api/v1/auth/register", map[string]any{"email": "not-an-email", "password": "x"})
	if bad.Status != http.StatusBadRequest && bad.Status != http.StatusUnprocessableEntity {
		t.Fatalf("bad register: %d %s", bad.Status, bad.Body)
	}
}

func TestEmbeddedAuthJourney(t *testing.T) {
	t.Parallel()
	p := start(t, nil, "--data-dir="+t.TempDir(), "--seed=false")
	authJourney(t, p.URL)
}

// TestDistributedAuthJourney: auth and the gateway as separate processes on
// PostgreSQL and the external NATS; the journey goes through the gateway.
func TestDistributedAuthJourney(t *testing.T) {
	t.Parallel()
	natsURL := os.Getenv("MALLHIVE_TEST_NATS_URL")
	if natsURL == "" {
		t.Skip("MALLHIVE_TEST_NATS_URL not set")
	}
	db := freshDatabase(t)
	public := "http://mallhive.e2e"
	common := []string{"--public-url=" + public, "--nats-url=" + natsURL, "--seed=false"}
	authProc := start(t, nil, append(common, "--services=auth", "--database-url="+db, "--data-dir="+t.TempDir())...)
	gw := start(t, []string{"MALLHIVE_AUTH_URL=" + authProc.URL}, append(common, "--services=gateway", "--data-dir="+t.TempDir())...)
	authJourney(t, gw.URL)
}
