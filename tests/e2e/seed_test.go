package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestFirstStartSeedsADemoMarketplace: the embedded shape seeds itself on
// first start, prints the demo accounts, and prints them again at the next
// start without seeding twice.
func TestFirstStartSeedsADemoMarketplace(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := start(t, nil, "--data-dir="+dir, "--seed-products=30")
	accounts := filepath.Join(dir, "demo-accounts.txt")
	eventually(t, "the demo seed", 90*time.Second, func() bool {
		_, err := os.Stat(accounts)
		return err == nil
	})
	if !strings.Contains(p.out.String(), "DEMO ONLY") {
		t.Fatalf("the demo accounts were not printed:\n%s", lastLines(p.out.String(), 20))
	}
	buyer := &client{t: t, base: p.URL}
	signIn(t, buyer, "buyer@demo.mallhive.dev", "demo-only: velvet orchard tide")
	var list struct {
		Items []product `json:"items"`
	}
	buyer.do("GET", "/api/v1/products?page_size=100", nil).expect(t, http.StatusOK).decode(t, &list)
	if len(list.Items) != 30 {
		t.Fatalf("%d demo products listed, want 30", len(list.Items))
	}
	var found searchResult
	eventually(t, "demo products in search", 20*time.Second, func() bool {
		buyer.do("GET", "/api/v1/search?page_size=50", nil).expect(t, http.StatusOK).decode(t, &found)
		return found.Total == 30
	})
	if err := p.stop(t); err != nil {
		t.Fatalf("stop: %v", err)
	}

	again := start(t, nil, "--data-dir="+dir, "--seed-products=30")
	eventually(t, "the accounts printed again", 10*time.Second, func() bool { return strings.Contains(again.out.String(), "DEMO ONLY") })
	(&client{t: t, base: again.URL}).do("GET", "/api/v1/products?page_size=100", nil).expect(t, http.StatusOK).decode(t, &list)
	if len(list.Items) != 30 {
		t.Fatalf("after a restart: %d products, want the same 30", len(list.Items))
	}
}
