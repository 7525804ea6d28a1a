package search

import (
	"encoding/base64"
	"strconv"
	"strings"

	"github.com/mallhive/mallhive/internal/platform/errs"
)

// MaxOffset is the deepest result a page token can reach. Deeper pages cost
// the index a sort over offset+size hits per request and nobody reads them;
// narrowing the query is the way further.
const MaxOffset = 10_000

// pageTokenPrefix versions the token, so a later format (say, a search-after
// cursor) can be told apart from this one.
const pageTokenPrefix = "o1:"

// EncodePageToken returns the opaque token for the page starting at offset,
// which must be within 0..MaxOffset for DecodePageToken to accept it.
func EncodePageToken(offset int) string {
	return base64.RawURLEncoding.EncodeToString([]byte(pageTokenPrefix + strconv.Itoa(offset)))
}

// DecodePageToken returns the offset in a token from EncodePageToken. Any
// other string gets an Invalid error (a 400 at the edge).
func DecodePageToken(s string) (int, error) {
	bad := errs.Field("page_token", "is malformed")
	if len(s) > 32 {
		return 0, bad
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return 0, bad
	}
	digits, ok := strings.CutPrefix(string(b), pageTokenPrefix)
	if !ok {
		return 0, bad
	}
	n, err := strconv.Atoi(digits)
	// Only the canonical spelling is accepted ("+7", "007" and base64 with
	// stray bits or newlines are not), so a token means exactly one offset.
	if err != nil || n < 0 || n > MaxOffset || EncodePageToken(n) != s {
		return 0, bad
	}
	return n, nil
}
