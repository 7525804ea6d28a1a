package seed

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mallhive/mallhive/internal/platform/httpx"
)

// APIError is a response the seeder could not get past: any 4xx but 429,
// any 5xx but 503, or a 429/503 that outlasted the retries. Problem holds
// the server's RFC 9457 problem document (its title alone when the body was
// not one).
type APIError struct {
	Method  string
	Path    string
	Status  int
	Problem httpx.Problem
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: %d", e.Method, e.Path, e.Status)
	p := e.Problem
	if p.Title != "" {
		b.WriteString(" " + p.Title)
	}
	if p.Detail != "" {
		b.WriteString(": " + p.Detail)
	}
	if len(p.Errors) > 0 {
		fields, _ := json.Marshal(p.Errors)
		b.WriteString(" " + string(fields))
	}
	if p.Code != "" {
		fmt.Fprintf(&b, " (code %s", p.Code)
		if p.RequestID != "" {
			b.WriteString(", request " + p.RequestID)
		}
		b.WriteString(")")
	}
	return b.String()
}

// client calls the REST API, retrying what the server asks to be retried:
// 429 after its Retry-After, 503 with exponential backoff. A 429 or 503
// means the request was not carried out, so retrying a POST is safe;
// transport errors are not retried, because there it is unknown.
type client struct {
	base string
	http *http.Client
	// attempts bounds tries per request; backoff is the first 503 wait
	// (doubling, capped at maxWait) and the 429 wait without Retry-After.
	attempts int
	backoff  time.Duration
	maxWait  time.Duration
}

func newClient(base string, concurrency int) *client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = concurrency + 2
	return &client{
		base:     strings.TrimRight(base, "/"),
		http:     &http.Client{Transport: tr, Timeout: time.Minute},
		attempts: 10,
		backoff:  250 * time.Millisecond,
		maxWait:  30 * time.Second,
	}
}

// request is one call, kept as bytes so it can be sent again.
type request struct {
	method, path string
	body         []byte
	contentType  string
	auth         *session // nil: anonymous
}

// do sends req and decodes a 2xx JSON body into out (when out is not nil).
// It returns the status of the answer.
func (c *client) do(ctx context.Context, req request, out any) (int, error) {
	wait := c.backoff
	for attempt := 1; ; attempt++ {
		status, retryAfter, err := c.once(ctx, req, out)
		if err == nil {
			return status, nil
		}
		var apiErr *APIError
		if !errors.As(err, &apiErr) || attempt >= c.attempts {
			return status, err
		}
		switch apiErr.Status {
		case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		default:
			return status, err
		}
		d := wait
		if retryAfter >= 0 { // the server knows best when to come back
			d = min(retryAfter, c.maxWait)
		} else {
			wait = min(2*wait, c.maxWait)
		}
		if err := sleep(ctx, d); err != nil {
			return status, err
		}
	}
}

// once sends req a single time. retryAfter is -1 when the answer did not
// name one.
func (c *client) once(ctx context.Context, req request, out any) (status int, retryAfter time.Duration, err error) {
	var body io.Reader
	if req.body != nil {
		body = bytes.NewReader(req.body)
	}
	r, err := http.NewRequestWithContext(ctx, req.method, c.base+req.path, body)
	if err != nil {
		return 0, -1, fmt.Errorf("%s %s: %w", req.method, req.path, err)
	}
	if req.contentType != "" {
		r.Header.Set("Content-Type", req.contentType)
	}
	r.Header.Set("Accept", "application/json")
	if req.auth != nil {
		tok, err := req.auth.token(ctx)
		if err != nil {
			return 0, -1, err
		}
		r.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := c.http.Do(r)
	if err != nil {
		return 0, -1, fmt.Errorf("%s %s: %w", req.method, req.path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return resp.StatusCode, -1, fmt.Errorf("%s %s: read answer: %w", req.method, req.path, err)
	}
	if resp.StatusCode >= 300 {
		e := &APIError{Method: req.method, Path: req.path, Status: resp.StatusCode}
		if json.Unmarshal(data, &e.Problem) != nil || e.Problem.Status == 0 {
			e.Problem = httpx.Problem{Title: http.StatusText(resp.StatusCode), Detail: firstLine(data)}
		}
		return resp.StatusCode, parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()), e
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, -1, fmt.Errorf("%s %s: decode answer: %w", req.method, req.path, err)
		}
	}
	return resp.StatusCode, -1, nil
}

// json sends in as a JSON body (none when in is nil).
func (c *client) json(ctx context.Context, method, path string, auth *session, in, out any) (int, error) {
	req := request{method: method, path: path, auth: auth}
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, fmt.Errorf("%s %s: encode: %w", method, path, err)
		}
		req.body, req.contentType = b, "application/json"
	}
	return c.do(ctx, req, out)
}

// upload posts data as the multipart field name.
func (c *client) upload(ctx context.Context, path string, auth *session, field, filename, contentType string, data []byte, out any) (int, error) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name=%q; filename=%q`, field, filename))
	h.Set("Content-Type", contentType)
	part, err := mw.CreatePart(h)
	if err != nil {
		return 0, err
	}
	if _, err := part.Write(data); err != nil {
		return 0, err
	}
	if err := mw.Close(); err != nil {
		return 0, err
	}
	return c.do(ctx, request{method: http.MethodPost, path: path, body: buf.Bytes(),
		contentType: mw.FormDataContentType(), auth: auth}, out)
}

// parseRetryAfter reads delay-seconds or an HTTP date; -1 when absent or
// unreadable.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return -1
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return -1
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

// tokens is the body of a successful sign-in, enrolment or refresh.
type tokens struct {
	AccessToken   string   `json:"access_token"`
	RefreshToken  string   `json:"refresh_token"`
	ExpiresIn     int64    `json:"expires_in"`
	RecoveryCodes []string `json:"recovery_codes"`
	User          struct {
		ID    string   `json:"id"`
		Email string   `json:"email"`
		Roles []string `json:"roles"`
	} `json:"user"`
}

// session holds one user's tokens and refreshes the access token before it
// expires (access tokens live minutes; seeding thousands of products may
// take longer). Workers of one seller share it.
type session struct {
	c      *client
	userID string

	mu      sync.Mutex
	access  string
	refresh string
	ttl     time.Duration
	expires time.Time
}

func newSession(c *client, t tokens) *session {
	s := &session{c: c, userID: t.User.ID}
	s.set(t)
	return s
}

func (s *session) set(t tokens) {
	s.access, s.refresh = t.AccessToken, t.RefreshToken
	s.ttl = time.Duration(t.ExpiresIn) * time.Second
	s.expires = time.Now().Add(s.ttl)
}

// token returns a usable access token, refreshing it when less than a
// quarter of its life (at most two minutes) is left.
func (s *session) token(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if time.Until(s.expires) > min(s.ttl/4, 2*time.Minute) {
		return s.access, nil
	}
	var t tokens
	if _, err := s.c.json(ctx, http.MethodPost, "/api/v1/auth/refresh", nil,
		map[string]string{"refresh_token": s.refresh}, &t); err != nil {
		return "", fmt.Errorf("refresh session: %w", err)
	}
	s.set(t)
	return s.access, nil
}
