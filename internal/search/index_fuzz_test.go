package search

import (
	"testing"

	"github.com/mallhive/mallhive/internal/platform/errs"
)

// FuzzDecodePageToken checks that no string panics the decoder, that only
// in-range offsets come out, and that an accepted token is the canonical
// encoding of its offset (one offset, one token).
func FuzzDecodePageToken(f *testing.F) {
	for _, seed := range []string{
		EncodePageToken(0), EncodePageToken(20), EncodePageToken(MaxOffset),
		EncodePageToken(MaxOffset + 1), EncodePageToken(-1),
		"", "!!!", "====", b64("o1:"), b64("o1:+5"), b64("o1:05"), b64("o1:99999999999999999999"),
		EncodePageToken(5) + "\n", "\xff\xfe",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := DecodePageToken(s)
		if err != nil {
			if !errs.Is(err, errs.Invalid) {
				t.Fatalf("DecodePageToken(%q): error %v is not Invalid", s, err)
			}
			return
		}
		if n < 0 || n > MaxOffset {
			t.Fatalf("DecodePageToken(%q) = %d, out of range", s, n)
		}
		if back := EncodePageToken(n); back != s {
			t.Fatalf("DecodePageToken(%q) = %d, which encodes as %q", s, n, back)
		}
	})
}
