package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
)

// TestDistributedMarketplace: every service in its own process, on
// PostgreSQL (a schema per service), Redis carts and an external NATS (a
// namespace of its own), with the gateway in front: the shop and search
// journeys go through the gateway exactly as in the embedded shape.
func TestDistributedMarketplace(t *testing.T) {
	t.Parallel()
	natsURL, redisURL := os.Getenv("MALLHIVE_TEST_NATS_URL"), os.Getenv("MALLHIVE_TEST_REDIS_URL")
	if natsURL == "" || redisURL == "" {
		t.Skip("MALLHIVE_TEST_NATS_URL and MALLHIVE_TEST_REDIS_URL are needed")
	}
	db := freshDatabase(t)
	var b [4]byte
	_, _ = rand.Read(b[:])
	run := hex.EncodeToString(b[:])
	common := []string{"--public-url=http://mallhive.e2e", "--nats-url=" + natsURL, "--nats-namespace=e2e_" + run, "--seed=false"}
	with := func(extra ...string) []string { return append(append([]string{}, common...), extra...) }

	auth := start(t, nil, with("--services=auth", "--database-url="+db, "--data-dir="+t.TempDir())...)
	env := []string{"MALLHIVE_AUTH_URL=" + auth.URL}
	catalog := start(t, env, with("--services=catalog", "--database-url="+db, "--data-dir="+t.TempDir())...)
	env = append(env, "MALLHIVE_CATALOG_URL="+catalog.URL)
	cart := start(t, env, with("--services=cart", "--database-url="+db, "--redis-url="+redisURL,
		"--cart.redis-prefix=e2e:"+run+":", "--data-dir="+t.TempDir())...)
	env = append(env, "MALLHIVE_CART_URL="+cart.URL)
	search := start(t, env, with("--services=search", "--data-dir="+t.TempDir())...)
	env = append(env, "MALLHIVE_SEARCH_URL="+search.URL)
	gw := start(t, env, with("--services=gateway", "--data-dir="+t.TempDir())...)

	adm := adminWith(t, gw.URL, "--database-url="+db)
	shopJourney(t, gw.URL, adm)
	searchJourney(t, gw.URL, adm)
}
