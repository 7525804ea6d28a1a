package httpx

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/mallhive/mallhive/internal/platform/errs"
)

// throttled is an error that knows how long the caller must wait.
type throttled time.Duration

func (t throttled) Error() string             { return "throttled" }
func (t throttled) RetryAfter() time.Duration { return time.Duration(t) }

func TestHandlerFunc(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name        string
		h           HandlerFunc
		status      int
		contentType string
		code        errs.Code // the problem's code; "" when the body is not a problem
		body        string    // the exact body when code is ""
	}{
		{
			name: "nil error leaves the response alone",
			h: func(w http.ResponseWriter, r *http.Request) error {
				WriteJSON(w, http.StatusCreated, map[string]string{"id": "1"})
				return nil
			},
			status: http.StatusCreated, contentType: "application/json", body: `{"id":"1"}` + "\n",
		},
		{
			name:   "nil error after writing nothing is a 200",
			h:      func(http.ResponseWriter, *http.Request) error { return nil },
			status: http.StatusOK, body: "",
		},
		{
			name: "handler writes its own problem and returns nil",
			h: func(w http.ResponseWriter, r *http.Request) error {
				w.Header().Set("Allow", "GET")
				WriteProblem(w, r, Problem{Status: http.StatusMethodNotAllowed, Code: errs.Invalid, Detail: "use GET"})
				return nil
			},
			status: http.StatusMethodNotAllowed, contentType: "application/problem+json", code: errs.Invalid,
		},
		{
			name:   "domain error",
			h:      func(http.ResponseWriter, *http.Request) error { return errs.E(errs.NotFound, "no such thing") },
			status: http.StatusNotFound, contentType: "application/problem+json", code: errs.NotFound,
		},
		{
			name: "wrapped domain error",
			h: func(http.ResponseWriter, *http.Request) error {
				return fmt.Errorf("load: %w", errs.E(errs.Conflict, "taken"))
			},
			status: http.StatusConflict, contentType: "application/problem+json", code: errs.Conflict,
		},
		{
			name:   "plain error is a 500",
			h:      func(http.ResponseWriter, *http.Request) error { return errors.New("pq: broken") },
			status: http.StatusInternalServerError, contentType: "application/problem+json", code: errs.Internal,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var h http.Handler = c.h
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil))
			if rec.Code != c.status {
				t.Fatalf("status %d, want %d (%s)", rec.Code, c.status, rec.Body)
			}
			if got := rec.Header().Get("Content-Type"); got != c.contentType {
				t.Fatalf("Content-Type %q, want %q", got, c.contentType)
			}
			if c.code == "" {
				if got := rec.Body.String(); got != c.body {
					t.Fatalf("body %q, want %q", got, c.body)
				}
				return
			}
			var p Problem
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
				t.Fatalf("body is not a problem: %v: %s", err, rec.Body)
			}
			if p.Code != c.code || p.Status != c.status || p.Instance != "/x" {
				t.Fatalf("problem %+v, want code %q status %d", p, c.code, c.status)
			}
		})
	}
}

func TestWriteErrorRetryAfter(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		err    error
		status int
		want   string // "" means no Retry-After
	}{
		{"no wait", errs.E(errs.TooManyRequests, "slow down"), http.StatusTooManyRequests, ""},
		{"plain error", errors.New("boom"), http.StatusInternalServerError, ""},
		{"whole seconds", &errs.Error{Code: errs.TooManyRequests, Message: "slow down", Err: throttled(3 * time.Second)}, http.StatusTooManyRequests, "3"},
		{"rounded up", &errs.Error{Code: errs.TooManyRequests, Message: "slow down", Err: throttled(1500 * time.Millisecond)}, http.StatusTooManyRequests, "2"},
		{"just over a second", &errs.Error{Code: errs.TooManyRequests, Message: "slow down", Err: throttled(time.Second + time.Nanosecond)}, http.StatusTooManyRequests, "2"},
		{"under a second is 1", &errs.Error{Code: errs.TooManyRequests, Message: "slow down", Err: throttled(time.Millisecond)}, http.StatusTooManyRequests, "1"},
		{"zero is 1", &errs.Error{Code: errs.TooManyRequests, Message: "slow down", Err: throttled(0)}, http.StatusTooManyRequests, "1"},
		{"negative is 1", &errs.Error{Code: errs.TooManyRequests, Message: "slow down", Err: throttled(-time.Minute)}, http.StatusTooManyRequests, "1"},
		{"wrapped around the domain error", fmt.Errorf("reserve: %w", &errs.Error{Code: errs.Unavailable, Message: "busy", Err: throttled(time.Minute)}), http.StatusServiceUnavailable, "60"},
		{"deep in the chain", &errs.Error{Code: errs.TooManyRequests, Message: "slow down", Err: fmt.Errorf("limiter: %w", throttled(2*time.Second))}, http.StatusTooManyRequests, "2"},
		{"joined", errors.Join(errs.E(errs.TooManyRequests, "slow down"), throttled(4*time.Second)), http.StatusTooManyRequests, "4"},
		{"without a domain code", throttled(5 * time.Second), http.StatusInternalServerError, "5"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			rec := httptest.NewRecorder()
			WriteError(rec, httptest.NewRequest("POST", "/x", nil), c.err)
			if rec.Code != c.status {
				t.Fatalf("status %d, want %d", rec.Code, c.status)
			}
			got, ok := rec.Header()["Retry-After"]
			switch {
			case c.want == "" && ok:
				t.Fatalf("Retry-After %q, want none", got)
			case c.want != "" && (len(got) != 1 || got[0] != c.want):
				t.Fatalf("Retry-After %q, want %q", got, c.want)
			}
		})
	}
}

// TestHandlerFuncRetryAfter: a handler's returned throttling error reaches
// the client with its wait, through a real server.
func TestHandlerFuncRetryAfter(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(HandlerFunc(func(http.ResponseWriter, *http.Request) error {
		return &errs.Error{Code: errs.TooManyRequests, Message: "slow down", Err: throttled(2500 * time.Millisecond)}
	}))
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "3" {
		t.Fatalf("got %d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}
