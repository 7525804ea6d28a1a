package httpx

import "net/http"

// HandlerFunc is an http.Handler that returns its error instead of writing
// it, so a handler's failure paths read as plain `return err`. A handler
// that writes its own response (a problem with extra headers, a 304) returns
// nil after doing so.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// ServeHTTP calls h and writes a non-nil error with WriteError.
func (h HandlerFunc) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := h(w, r); err != nil {
		WriteError(w, r, err)
	}
}
