package auth

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mallhive/mallhive/internal/platform/errs"
	"github.com/mallhive/mallhive/internal/platform/sqldb"
)

// Store statements of the OAuth2 / OpenID Connect provider (oauth.go) and
// of sign-in with an external provider (oidc.go).

// keepSpent is how long authorization codes are kept after they expire:
// long enough to recognise a replayed code.
const keepSpent = 24 * time.Hour

// ---- clients ----

// CreateOAuthClient stores a registered client.
func (q *Queries) CreateOAuthClient(ctx context.Context, c OAuthClient) error {
	uris, err := json.Marshal(c.RedirectURIs)
	if err != nil {
		return fmt.Errorf("create oauth client: %w", err)
	}
	_, err = q.q.ExecContext(ctx, `INSERT INTO oauth_clients (id, secret_hash, name, redirect_uris, grant_types, scopes, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		c.ID, c.SecretHash, c.Name, string(uris), strings.Join(c.GrantTypes, " "), strings.Join(c.Scopes, " "), dbTime(c.CreatedAt))
	if err != nil {
		return fmt.Errorf("create oauth client: %w", err)
	}
	return nil
}

const clientColumns = `id, secret_hash, name, redirect_uris, grant_types, scopes, created_at`

func scanClient(sc interface{ Scan(...any) error }) (OAuthClient, error) {
	var c OAuthClient
	var uris, grants, scopes string
	if err := sc.Scan(&c.ID, &c.SecretHash, &c.Name, &uris, &grants, &scopes, &c.CreatedAt); err != nil {
		return OAuthClient{}, err
	}
	if err := json.Unmarshal([]byte(uris), &c.RedirectURIs); err != nil {
		return OAuthClient{}, fmt.Errorf("decode redirect uris of %s: %w", c.ID, err)
	}
	c.GrantTypes, c.Scopes, c.CreatedAt = strings.Fields(grants), strings.Fields(scopes), c.CreatedAt.UTC()
	return c, nil
}

// OAuthClient returns a registered client. Errors: errs.NotFound.
func (q *Queries) OAuthClient(ctx context.Context, id string) (OAuthClient, error) {
	c, err := scanClient(q.q.QueryRowContext(ctx, `SELECT `+clientColumns+` FROM oauth_clients WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return OAuthClient{}, notFound("client")
	}
	if err != nil {
		return OAuthClient{}, fmt.Errorf("read oauth client: %w", err)
	}
	return c, nil
}

// ListOAuthClients returns one page of clients, newest first, and the
// cursor of the next page ("" on the last). Errors: errs.Invalid for a
// malformed cursor.
func (q *Queries) ListOAuthClients(ctx context.Context, cursor string, limit int) ([]OAuthClient, string, error) {
	if limit <= 0 || limit > MaxListLimit {
		limit = MaxListLimit
	}
	query, args := `SELECT `+clientColumns+` FROM oauth_clients`, []any{}
	if cursor != "" {
		after, err := decodeCursor(cursor)
		if err != nil {
			return nil, "", err
		}
		query, args = query+` WHERE id < $1`, append(args, after)
	}
	query += fmt.Sprintf(` ORDER BY id DESC LIMIT %d`, limit+1)
	rows, err := q.q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list oauth clients: %w", err)
	}
	defer rows.Close()
	var cs []OAuthClient
	for rows.Next() {
		c, err := scanClient(rows)
		if err != nil {
			return nil, "", fmt.Errorf("list oauth clients: %w", err)
		}
		cs = append(cs, c)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("list oauth clients: %w", err)
	}
	next := ""
	if len(cs) > limit {
		cs = cs[:limit]
		next = encodeCursor(cs[limit-1].ID)
	}
	return cs, next, nil
}

// ---- authorization codes ----

// CreateAuthCode stores a new authorization code, and deletes codes that
// expired more than keepSpent ago (there are few: codes live a minute).
func (q *Queries) CreateAuthCode(ctx context.Context, c AuthCode) error {
	if _, err := q.q.ExecContext(ctx, `DELETE FROM oauth_codes WHERE expires_at < $1`, dbTime(c.CreatedAt.Add(-keepSpent))); err != nil {
		return fmt.Errorf("sweep authorization codes: %w", err)
	}
	_, err := q.q.ExecContext(ctx, `INSERT INTO oauth_codes (hash, client_id, user_id, redirect_uri, code_challenge, scope, nonce, auth_time, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		c.Hash, c.ClientID, c.UserID, c.RedirectURI, c.CodeChallenge, c.Scope, c.Nonce, dbTime(c.AuthTime), dbTime(c.CreatedAt), dbTime(c.ExpiresAt))
	if err != nil {
		return fmt.Errorf("store authorization code: %w", err)
	}
	return nil
}

// AuthCode returns an authorization code by hash, spent or not (locked for
// update inside a PostgreSQL transaction). Errors: errs.NotFound.
func (q *Queries) AuthCode(ctx context.Context, hash string) (AuthCode, error) {
	var c AuthCode
	var used sql.NullTime
	err := q.q.QueryRowContext(ctx, `SELECT hash, client_id, user_id, redirect_uri, code_challenge, scope, nonce, auth_time, created_at, expires_at, used_at, family_id
		FROM oauth_codes WHERE hash = $1`+q.forUpdate(), hash).
		Scan(&c.Hash, &c.ClientID, &c.UserID, &c.RedirectURI, &c.CodeChallenge, &c.Scope, &c.Nonce, &c.AuthTime, &c.CreatedAt, &c.ExpiresAt, &used, &c.FamilyID)
	if errors.Is(err, sql.ErrNoRows) {
		return AuthCode{}, notFound("authorization code")
	}
	if err != nil {
		return AuthCode{}, fmt.Errorf("read authorization code: %w", err)
	}
	c.AuthTime, c.CreatedAt, c.ExpiresAt, c.UsedAt = c.AuthTime.UTC(), c.CreatedAt.UTC(), c.ExpiresAt.UTC(), timePtr(used)
	return c, nil
}

// SpendAuthCode marks an unspent code spent; false means it was spent
// already.
func (q *Queries) SpendAuthCode(ctx context.Context, hash string, now time.Time) (bool, error) {
	res, err := q.q.ExecContext(ctx, `UPDATE oauth_codes SET used_at = $2 WHERE hash = $1 AND used_at IS NULL`, hash, dbTime(now))
	if err != nil {
		return false, fmt.Errorf("spend authorization code: %w", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// SetAuthCodeFamily records the session a code's exchange started.
func (q *Queries) SetAuthCodeFamily(ctx context.Context, hash, familyID string) error {
	if _, err := q.q.ExecContext(ctx, `UPDATE oauth_codes SET family_id = $2 WHERE hash = $1`, hash, familyID); err != nil {
		return fmt.Errorf("record authorization code session: %w", err)
	}
	return nil
}

// ---- external provider sign-in ----

// CreateOIDCState stores a started external sign-in, and deletes the
// expired ones: anyone can start sign-ins, so the table must not grow
// beyond what oidcStateTTL (and the gateway's rate limit) allow.
func (q *Queries) CreateOIDCState(ctx context.Context, st OIDCState) error {
	if _, err := q.q.ExecContext(ctx, `DELETE FROM oidc_login_states WHERE expires_at < $1`, dbTime(st.CreatedAt)); err != nil {
		return fmt.Errorf("sweep oidc states: %w", err)
	}
	_, err := q.q.ExecContext(ctx, `INSERT INTO oidc_login_states (state_hash, nonce, code_verifier, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)`,
		st.StateHash, st.Nonce, st.CodeVerifier, dbTime(st.CreatedAt), dbTime(st.ExpiresAt))
	if err != nil {
		return fmt.Errorf("store oidc state: %w", err)
	}
	return nil
}

// TakeOIDCState deletes and returns a started sign-in, expired or not, so
// a state works once. Errors: errs.NotFound.
func (q *Queries) TakeOIDCState(ctx context.Context, stateHash string) (OIDCState, error) {
	var st OIDCState
	err := q.q.QueryRowContext(ctx, `DELETE FROM oidc_login_states WHERE state_hash = $1 RETURNING state_hash, nonce, code_verifier, created_at, expires_at`, stateHash).
		Scan(&st.StateHash, &st.Nonce, &st.CodeVerifier, &st.CreatedAt, &st.ExpiresAt)
	if errors.Is(err, sql.ErrNoRows) {
		return OIDCState{}, notFound("sign-in state")
	}
	if err != nil {
		return OIDCState{}, fmt.Errorf("take oidc state: %w", err)
	}
	st.CreatedAt, st.ExpiresAt = st.CreatedAt.UTC(), st.ExpiresAt.UTC()
	return st, nil
}

// OIDCIdentityUser returns the id of the user linked to an external
// provider's subject. Errors: errs.NotFound.
func (q *Queries) OIDCIdentityUser(ctx context.Context, issuer, subject string) (string, error) {
	var id string
	err := q.q.QueryRowContext(ctx, `SELECT user_id FROM oidc_identities WHERE issuer = $1 AND subject = $2`, issuer, subject).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", notFound("linked identity")
	}
	if err != nil {
		return "", fmt.Errorf("read linked identity: %w", err)
	}
	return id, nil
}

// LinkOIDCIdentity links an external provider's subject to a user.
// Errors: errs.Conflict when the subject is linked already (a concurrent
// first sign-in).
func (q *Queries) LinkOIDCIdentity(ctx context.Context, issuer, subject, userID, email string, now time.Time) error {
	_, err := q.q.ExecContext(ctx, `INSERT INTO oidc_identities (issuer, subject, user_id, email, created_at) VALUES ($1, $2, $3, $4, $5)`,
		issuer, subject, userID, email, dbTime(now))
	if sqldb.IsUniqueViolation(err) {
		return errs.E(errs.Conflict, "this sign-in is being linked already; try again")
	}
	if err != nil {
		return fmt.Errorf("link identity: %w", err)
	}
	return nil
}
