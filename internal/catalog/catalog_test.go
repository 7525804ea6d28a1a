package catalog

import (
	"strings"
	"testing"
)

func TestSlugify(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"Merino wool crew sweater", "merino-wool-crew-sweater"},
		{"  --Café crème!! ", "cafe-creme"},
		{"ＦＵＬＬ width", "full-width"},
		{"日本語", "product"},
		{"", "product"},
		{"0190a4b2-7c3d-7e4f-8a1b-2c3d4e5f6a7b", "p-0190a4b2-7c3d-7e4f-8a1b-2c3d4e5f6a7b"},
		{strings.Repeat("ab ", 40), strings.TrimSuffix(strings.Repeat("ab-", 20), "-")},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got := Slugify(tt.in)
			if got != tt.want {
				t.Fatalf("Slugify(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if !validSlug(got) && !strings.HasPrefix(got, "p-") {
				t.Fatalf("%q is not a valid slug", got)
			}
		})
	}
}

func TestAvailability(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name           string
		known          bool
		available, low int64
		want           string
	}{
		{"no stock record", false, 0, 0, OutOfStock},
		{"zero", true, 0, 5, OutOfStock},
		{"negative", true, -1, 5, OutOfStock},
		{"at threshold", true, 5, 5, LowStock},
		{"above threshold", true, 6, 5, InStock},
		{"no threshold", true, 1, 0, InStock},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := availability(tt.known, tt.available, tt.low); got != tt.want {
				t.Fatalf("%s, want %s", got, tt.want)
			}
		})
	}
}
