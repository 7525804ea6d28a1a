// Package httpx is the HTTP edge shared by every service: RFC 9457 problem
// documents, bounded JSON decoding, middleware and a server with graceful
// shutdown.
package httpx

import (
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/mallhive/mallhive/internal/platform/errs"
)

// Problem is an RFC 9457 problem document.
type Problem struct {
	Type      string            `json:"type"`
	Title     string            `json:"title"`
	Status    int               `json:"status"`
	Detail    string            `json:"detail,omitempty"`
	Instance  string            `json:"instance,omitempty"`
	Code      errs.Code         `json:"code,omitempty"`
	Errors    map[string]string `json:"errors,omitempty"`
	RequestID string            `json:"request_id,omitempty"`
}

// StatusOf maps a domain error code to its HTTP status. It is the one place
// where that mapping lives.
func StatusOf(code errs.Code) int {
	switch code {
	case errs.Invalid:
		return http.StatusBadRequest
	case errs.NotFound:
		return http.StatusNotFound
	case errs.Conflict:
		return http.StatusConflict
	case errs.Forbidden:
		return http.StatusForbidden
	case errs.Unauthenticated:
		return http.StatusUnauthorized
	case errs.TooManyRequests:
		return http.StatusTooManyRequests
	case errs.TooLarge:
		return http.StatusRequestEntityTooLarge
	case errs.Unsupported:
		return http.StatusUnsupportedMediaType
	case errs.Unavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// WriteProblem writes a problem document with the given status.
func WriteProblem(w http.ResponseWriter, r *http.Request, p Problem) {
	if p.Type == "" {
		p.Type = "about:blank"
	}
	if p.Title == "" {
		p.Title = http.StatusText(p.Status)
	}
	if r != nil {
		p.Instance = r.URL.Path
		p.RequestID = RequestIDFrom(r.Context())
	}
	if p.Status == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="mallhive"`)
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// WriteError writes err as a problem document. Errors without a domain code
// become a 500 whose detail is hidden from the caller and logged instead.
// When err's chain holds a value with a RetryAfter() time.Duration method
// (a throttling error that knows its wait), the response carries
// Retry-After in whole seconds, rounded up and at least 1.
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	var ra interface{ RetryAfter() time.Duration }
	if errors.As(err, &ra) {
		w.Header().Set("Retry-After", strconv.FormatInt(retryAfterSeconds(ra.RetryAfter()), 10))
	}
	var e *errs.Error
	if !errors.As(err, &e) {
		slog.ErrorContext(r.Context(), "unhandled error", "err", err, "path", r.URL.Path, "request_id", RequestIDFrom(r.Context()))
		WriteProblem(w, r, Problem{Status: http.StatusInternalServerError, Code: errs.Internal, Detail: "an unexpected error occurred"})
		return
	}
	status := StatusOf(e.Code)
	if status >= 500 {
		slog.ErrorContext(r.Context(), "request failed", "err", err, "path", r.URL.Path, "request_id", RequestIDFrom(r.Context()))
	}
	WriteProblem(w, r, Problem{
		Type:   "https://mallhive.dev/problems/" + string(e.Code),
		Status: status,
		Detail: e.Message,
		Code:   e.Code,
		Errors: e.Fields,
	})
}

// retryAfterSeconds rounds up, since a client that comes back early is
// refused again, and never says 0, which would invite an immediate retry.
func retryAfterSeconds(d time.Duration) int64 {
	return max(1, int64(math.Ceil(d.Seconds())))
}

// WriteJSON writes v as JSON with the given status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if v != nil {
		_ = json.NewEncoder(w).Encode(v)
	}
}

// WriteJSONBytes writes JSON encoded beforehand (by json.Marshal, with the
// newline WriteJSON's encoder adds), so a cached answer goes out unchanged.
func WriteJSONBytes(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
