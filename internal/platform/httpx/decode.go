package httpx

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/mallhive/mallhive/internal/platform/errs"
)

// DefaultMaxBody bounds JSON request bodies unless a handler asks for more.
const DefaultMaxBody = 1 << 20

// DecodeJSON reads one JSON object from the request body into dst. Unknown
// fields, trailing data, a wrong content type and bodies over maxBytes
// (DefaultMaxBody when 0) are refused with a 4xx domain error.
func DecodeJSON(w http.ResponseWriter, r *http.Request, dst any, maxBytes int64) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return errs.E(errs.Unsupported, "the body must be application/json")
		}
	}
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBody
	}
	body := http.MaxBytesReader(w, r.Body, maxBytes)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeError(err)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		return errs.E(errs.Invalid, "the body must hold a single JSON object")
	}
	return nil
}

func decodeError(err error) error {
	var (
		syntax  *json.SyntaxError
		typeErr *json.UnmarshalTypeError
		maxErr  *http.MaxBytesError
	)
	switch {
	case errors.As(err, &maxErr):
		return errs.E(errs.TooLarge, "the body is larger than %d bytes", maxErr.Limit)
	case errors.As(err, &syntax):
		return errs.E(errs.Invalid, "malformed JSON at byte %d", syntax.Offset)
	case errors.As(err, &typeErr):
		if typeErr.Field != "" {
			return errs.Field(typeErr.Field, fmt.Sprintf("must be %s", typeErr.Type))
		}
		return errs.E(errs.Invalid, "the body must be a JSON object")
	case errors.Is(err, io.EOF):
		return errs.E(errs.Invalid, "the body is empty")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errs.E(errs.Invalid, "the body ends mid-value")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return errs.Field(strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`), "unknown field")
	default:
		return errs.E(errs.Invalid, "the body is not valid JSON")
	}
}
