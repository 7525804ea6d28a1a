package httpx

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/mallhive/mallhive/internal/platform/errs"
)

type body struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
}

func TestDecodeJSON(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, ct, in string
		limit        int64
		code         errs.Code // "" means success
	}{
		{"ok", "application/json", `{"name":"a","count":2}`, 0, ""},
		{"ok without content type", "", `{"name":"a"}`, 0, ""},
		{"problem+json accepted", "application/merge-patch+json", `{"name":"a"}`, 0, ""},
		{"wrong content type", "text/plain", `{"name":"a"}`, 0, errs.Unsupported},
		{"unknown field", "application/json", `{"nam":"a"}`, 0, errs.Invalid},
		{"wrong type", "application/json", `{"count":"2"}`, 0, errs.Invalid},
		{"float for int", "application/json", `{"count":2.5}`, 0, errs.Invalid},
		{"syntax", "application/json", `{"name":`, 0, errs.Invalid},
		{"empty", "application/json", ``, 0, errs.Invalid},
		{"trailing data", "application/json", `{"name":"a"} {}`, 0, errs.Invalid},
		{"array", "application/json", `[1,2]`, 0, errs.Invalid},
		{"too large", "application/json", `{"name":"` + strings.Repeat("x", 100) + `"}`, 50, errs.TooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest("POST", "/", strings.NewReader(c.in))
			if c.ct != "" {
				r.Header.Set("Content-Type", c.ct)
			}
			var b body
			err := DecodeJSON(httptest.NewRecorder(), r, &b, c.limit)
			if c.code == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if got := errs.CodeOf(err); got != c.code {
				t.Fatalf("code %q (%v), want %q", got, err, c.code)
			}
		})
	}
}

func TestWriteErrorHidesInternalDetail(t *testing.T) {
	t.Parallel()
	rec := httptest.NewRecorder()
	WriteError(rec, httptest.NewRequest("GET", "/x", nil), errors.New("pq: password=secret"))
	if rec.Code != 500 || strings.Contains(rec.Body.String(), "secret") {
		t.Fatalf("got %d %s", rec.Code, rec.Body)
	}
	rec = httptest.NewRecorder()
	WriteError(rec, httptest.NewRequest("GET", "/x", nil), errs.Field("price", "must not be negative"))
	var p Problem
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatal(err)
	}
	if rec.Code != 400 || p.Errors["price"] == "" || rec.Header().Get("Content-Type") != "application/problem+json" {
		t.Fatalf("got %d %+v", rec.Code, p)
	}
}

func TestPlainErrorsBecomeProblems(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /thing", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	h := PlainErrorsAsProblems(mux)
	for _, c := range []struct {
		method, path string
		status       int
	}{{"GET", "/nothing", 404}, {"POST", "/thing", 405}} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(c.method, c.path, nil))
		if rec.Code != c.status || rec.Header().Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s %s: %d %q", c.method, c.path, rec.Code, rec.Header().Get("Content-Type"))
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/thing", nil))
	if rec.Body.String() != "ok" {
		t.Errorf("success body changed: %q", rec.Body)
	}
}

func TestRecoverAnswers500(t *testing.T) {
	t.Parallel()
	h := Recover(slog.New(slog.DiscardHandler))(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != 500 || !strings.Contains(rec.Body.String(), "unexpected") {
		t.Fatalf("got %d %s", rec.Code, rec.Body)
	}
}

func TestClientIP(t *testing.T) {
	t.Parallel()
	trusted := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.0.0.0/8")}
	cases := []struct{ name, remote, xff, want string }{
		{"direct", "203.0.113.5:1234", "", "203.0.113.5"},
		{"untrusted peer cannot spoof", "203.0.113.5:1234", "1.2.3.4", "203.0.113.5"},
		{"trusted peer forwarding no one", "127.0.0.1:1", "", "127.0.0.1"},
		{"via trusted proxy", "127.0.0.1:1", "198.51.100.7", "198.51.100.7"},
		{"chain of trusted proxies", "127.0.0.1:1", "198.51.100.7, 10.1.1.1", "198.51.100.7"},
		{"spoofed left entry ignored", "127.0.0.1:1", "1.1.1.1, 198.51.100.7", "198.51.100.7"},
		{"garbage header", "127.0.0.1:1", "not-an-ip", "127.0.0.1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got string
			h := ClientIPs(trusted)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = ClientIP(r.Context()) }))
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = c.remote
			if c.xff != "" {
				r.Header.Set("X-Forwarded-For", c.xff)
			}
			h.ServeHTTP(httptest.NewRecorder(), r)
			if got != c.want {
				t.Fatalf("got %q, want %q", got, c.want)
			}
		})
	}
}

func TestRequestIDKeepsSaneAndReplacesHostile(t *testing.T) {
	t.Parallel()
	var seen string
	h := RequestID(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen = RequestIDFrom(r.Context()) }))
	for in, keep := range map[string]bool{"abc-123": true, "bad id\n": false, strings.Repeat("a", 65): false} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("X-Request-Id", in)
		h.ServeHTTP(httptest.NewRecorder(), r)
		if (seen == in) != keep || seen == "" {
			t.Errorf("in %q: got %q", in, seen)
		}
	}
}
