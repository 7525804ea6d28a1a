// Package authntest mints real access tokens for tests of services that
// verify them: an ES256 key, a Verifier that trusts it, and tokens with the
// claims the auth service issues.
package authntest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/uuid"

	"github.com/mallhive/mallhive/internal/platform/authn"
)

// Issuer and Audience of the tokens Issuer mints.
const (
	IssuerURL = "http://mallhive.test"
	Audience  = "mallhive"
)

// Issuer mints access tokens that its Verifier accepts.
type Issuer struct {
	signer jose.Signer
	pub    jose.JSONWebKey
}

// New returns an Issuer with a fresh key.
func New(tb testing.TB) *Issuer {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: "test-key"}},
		(&jose.SignerOptions{}).WithType(authn.AccessTokenType))
	if err != nil {
		tb.Fatal(err)
	}
	return &Issuer{signer: signer, pub: jose.JSONWebKey{Key: &key.PublicKey, KeyID: "test-key", Algorithm: "ES256", Use: "sig"}}
}

// Verifier returns a Verifier that trusts this issuer's key.
func (i *Issuer) Verifier() *authn.Verifier {
	return authn.NewVerifier(authn.VerifierConfig{
		Keys: authn.KeySourceFunc(func(context.Context) (jose.JSONWebKeySet, error) {
			return jose.JSONWebKeySet{Keys: []jose.JSONWebKey{i.pub}}, nil
		}),
		Issuer:   IssuerURL,
		Audience: Audience,
	})
}

// Token returns a ten-minute access token for userID with roles.
func (i *Issuer) Token(tb testing.TB, userID string, roles ...string) string {
	tb.Helper()
	now := time.Now()
	claims := struct {
		jwt.Claims
		Roles []string `json:"roles"`
	}{
		Claims: jwt.Claims{
			Issuer: IssuerURL, Subject: userID, Audience: jwt.Audience{Audience},
			Expiry: jwt.NewNumericDate(now.Add(10 * time.Minute)), IssuedAt: jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now), ID: uuid.NewString(),
		},
		Roles: roles,
	}
	tok, err := jwt.Signed(i.signer).Claims(claims).Serialize()
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}
