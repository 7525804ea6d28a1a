package authn

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// maxJWKSBytes bounds a JWKS response; a real one holds a handful of keys.
const maxJWKSBytes = 1 << 20

// KeySource supplies the public keys that access tokens may be signed with.
// The Verifier caches what it returns; a source is called on the first
// verification, when the cache is stale and when a token names an unknown kid
// (rate limited).
type KeySource interface {
	Keys(ctx context.Context) (jose.JSONWebKeySet, error)
}

// KeySourceFunc adapts a function to KeySource, for in-process use (the auth
// service verifies with its own key ring) and tests.
type KeySourceFunc func(ctx context.Context) (jose.JSONWebKeySet, error)

// Keys calls f.
func (f KeySourceFunc) Keys(ctx context.Context) (jose.JSONWebKeySet, error) { return f(ctx) }

// HTTPKeySource fetches a JWKS document over HTTP: the production path, from
// the auth service's /.well-known/jwks.json.
type HTTPKeySource struct {
	URL string
	// Client is used for the fetch; nil means http.DefaultClient. Each fetch
	// is bounded by fetchTimeout whatever the client.
	Client *http.Client
}

const fetchTimeout = 10 * time.Second

// Keys fetches and parses the JWKS. Keys the parser does not understand are
// skipped rather than failing the whole set, so the auth service can publish
// a new key type without locking out older verifiers.
func (s HTTPKeySource) Keys(ctx context.Context) (jose.JSONWebKeySet, error) {
	client := s.Client
	if client == nil {
		client = http.DefaultClient
	}
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL, nil)
	if err != nil {
		return jose.JSONWebKeySet{}, fmt.Errorf("fetch jwks: %w", err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := client.Do(req)
	if err != nil {
		return jose.JSONWebKeySet{}, fmt.Errorf("fetch jwks: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxJWKSBytes))
		return jose.JSONWebKeySet{}, fmt.Errorf("fetch jwks: %s answered %s", s.URL, resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return jose.JSONWebKeySet{}, fmt.Errorf("fetch jwks: unexpected content type %q", ct)
		}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return jose.JSONWebKeySet{}, fmt.Errorf("fetch jwks: read body: %w", err)
	}
	if len(body) > maxJWKSBytes {
		return jose.JSONWebKeySet{}, fmt.Errorf("fetch jwks: body larger than %d bytes", maxJWKSBytes)
	}
	return parseJWKS(body)
}

func parseJWKS(body []byte) (jose.JSONWebKeySet, error) {
	var raw struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return jose.JSONWebKeySet{}, fmt.Errorf("parse jwks: %w", err)
	}
	var set jose.JSONWebKeySet
	for _, k := range raw.Keys {
		var key jose.JSONWebKey
		if err := key.UnmarshalJSON(k); err != nil {
			continue
		}
		set.Keys = append(set.Keys, key)
	}
	return set, nil
}
