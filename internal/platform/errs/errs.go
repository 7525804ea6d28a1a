// Package errs is MallHive's one domain error type. Domain and store code
// return *errs.Error values carrying a Code; the HTTP and RPC edges map the
// code to a status exactly once (httpx.WriteError, rpc interceptors).
package errs

import (
	"errors"
	"fmt"
)

// Code classifies a domain error independently of any transport.
type Code string

const (
	Invalid         Code = "invalid"           // the input is malformed or breaks a rule (400/422)
	NotFound        Code = "not_found"         // the resource does not exist, or the caller may not know it does (404)
	Conflict        Code = "conflict"          // the state does not allow the change (409)
	Forbidden       Code = "forbidden"         // authenticated but not allowed (403)
	Unauthenticated Code = "unauthenticated"   // no or bad credentials (401)
	TooManyRequests Code = "too_many_requests" // throttled (429)
	TooLarge        Code = "too_large"         // the body or upload is over its limit (413)
	Unsupported     Code = "unsupported"       // unsupported media type (415)
	Unavailable     Code = "unavailable"       // a dependency is down; retry later (503)
	Internal        Code = "internal"          // a bug or an unexpected failure (500)
)

// Error is a domain error. Message is safe to show to the caller; the wrapped
// Err (if any) is for logs only.
type Error struct {
	Code    Code
	Message string
	// Fields names invalid input fields and why, for 4xx validation problems.
	Fields map[string]string
	Err    error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// E builds an error with a code and a caller-safe message.
func E(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Field builds an Invalid error naming one bad field.
func Field(name, problem string) *Error {
	return &Error{Code: Invalid, Message: name + ": " + problem, Fields: map[string]string{name: problem}}
}

// CodeOf returns the code of the first *Error in err's chain, or Internal.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}

// Is reports whether err carries the given code.
func Is(err error, code Code) bool { return err != nil && CodeOf(err) == code }

// Fields collects field problems; Err returns nil when none were added, so
// validators read as a list of checks followed by `return v.Err()`.
type Fields map[string]string

// Add records a problem with a field; the first problem for a field wins.
func (f Fields) Add(name, problem string) {
	if _, ok := f[name]; !ok {
		f[name] = problem
	}
}

// Check adds problem for name when ok is false.
func (f Fields) Check(ok bool, name, problem string) {
	if !ok {
		f.Add(name, problem)
	}
}

// Err returns an Invalid error listing the fields, or nil.
func (f Fields) Err() error {
	if len(f) == 0 {
		return nil
	}
	return &Error{Code: Invalid, Message: "the request has invalid fields", Fields: map[string]string(f)}
}
