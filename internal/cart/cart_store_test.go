package cart

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mallhive/mallhive/internal/platform/errs"
	"github.com/mallhive/mallhive/internal/platform/money"
	"github.com/mallhive/mallhive/internal/platform/sqldb"
	"github.com/mallhive/mallhive/internal/platform/sqldb/sqldbtest"
)

// eachStore runs the store suite on the SQL store (SQLite, PostgreSQL) and
// on Redis. newStore builds a store with the given guest TTL.
func eachStore(t *testing.T, fn func(t *testing.T, newStore func(guestTTL time.Duration) Store)) {
	t.Helper()
	for _, d := range []sqldb.Dialect{sqldb.SQLite, sqldb.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			db := sqldbtest.Open(t, d, Name, migrationSets)
			fn(t, func(ttl time.Duration) Store { return NewSQLStore(db, ttl) })
		})
	}
	t.Run("redis", func(t *testing.T) {
		t.Parallel()
		rdb, prefix := openRedis(t)
		fn(t, func(ttl time.Duration) Store { return NewRedisStore(rdb, prefix, ttl) })
	})
}

func eur(a int64) money.Money { return money.Money{Amount: a, Currency: "EUR"} }

func at(sec int) time.Time { return time.Date(2026, 1, 1, 0, 0, sec, 0, time.UTC) }

// TestStore is the one cart store suite, run against every implementation.
func TestStore(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, newStore func(time.Duration) Store) {
		ctx := context.Background()
		s := newStore(time.Hour)
		add := func(sku string, q int, price int64, added time.Time) func(c *Cart) error {
			return func(c *Cart) error {
				if i := c.index(sku); i >= 0 {
					c.Lines[i].Quantity += q
					return nil
				}
				c.Lines = append(c.Lines, Line{SKU: sku, Quantity: q, AddedPrice: eur(price), AddedAt: added})
				return nil
			}
		}
		get := func(k Key) Cart {
			t.Helper()
			c, err := s.Get(ctx, k)
			if err != nil {
				t.Fatal(err)
			}
			return c
		}
		quantities := func(c Cart) string {
			out := ""
			for _, l := range c.Lines {
				out += fmt.Sprintf("%s=%d ", l.SKU, l.Quantity)
			}
			return out
		}

		t.Run("missing cart is empty", func(t *testing.T) {
			if c := get(UserKey("nobody")); len(c.Lines) != 0 {
				t.Fatalf("lines %v", c.Lines)
			}
			if err := s.Delete(ctx, UserKey("nobody")); err != nil {
				t.Fatal(err)
			}
		})

		t.Run("lines keep their order and fields", func(t *testing.T) {
			k := UserKey("order")
			for _, step := range []func(*Cart) error{add("B", 1, 200, at(2)), add("A", 2, 100, at(1)), add("C", 3, 300, at(3))} {
				if _, err := s.Update(ctx, k, step); err != nil {
					t.Fatal(err)
				}
			}
			c := get(k)
			if got := quantities(c); got != "A=2 B=1 C=3 " {
				t.Fatalf("lines %q", got)
			}
			if l := c.Lines[0]; l.AddedPrice != eur(100) || !l.AddedAt.Equal(at(1)) {
				t.Fatalf("line %+v", l)
			}
			returned, err := s.Update(ctx, k, func(c *Cart) error { c.Lines = c.Lines[1:]; return nil })
			if err != nil || quantities(returned) != "B=1 C=3 " || quantities(get(k)) != "B=1 C=3 " {
				t.Fatalf("after removing A: returned %q, stored %q, %v", quantities(returned), quantities(get(k)), err)
			}
		})

		t.Run("a failing update writes nothing", func(t *testing.T) {
			k := UserKey("fail")
			if _, err := s.Update(ctx, k, add("A", 1, 100, at(1))); err != nil {
				t.Fatal(err)
			}
			boom := errors.New("boom")
			_, err := s.Update(ctx, k, func(c *Cart) error {
				c.Lines[0].Quantity = 50
				c.Lines = append(c.Lines, Line{SKU: "B", Quantity: 1, AddedPrice: eur(1), AddedAt: at(2)})
				return boom
			})
			if !errors.Is(err, boom) || quantities(get(k)) != "A=1 " {
				t.Fatalf("err %v, cart %q", err, quantities(get(k)))
			}
			if _, err := s.Update(ctx, testGuestKey("fresh"), func(*Cart) error { return boom }); !errors.Is(err, boom) {
				t.Fatal(err)
			}
		})

		t.Run("emptied cart is gone", func(t *testing.T) {
			k := UserKey("empty")
			if _, err := s.Update(ctx, k, add("A", 1, 100, at(1))); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Update(ctx, k, func(c *Cart) error { c.Lines = nil; return nil }); err != nil {
				t.Fatal(err)
			}
			if c := get(k); len(c.Lines) != 0 {
				t.Fatalf("lines %v", c.Lines)
			}
		})

		t.Run("concurrent updates are atomic", func(t *testing.T) {
			k := UserKey("busy")
			var wg sync.WaitGroup
			for i := range 20 {
				wg.Go(func() {
					if _, err := s.Update(ctx, k, add("A", 1, 100, at(1))); err != nil {
						t.Errorf("update: %v", err)
					}
					if _, err := s.Update(ctx, k, add(fmt.Sprintf("S%02d", i), 1, 100, at(2+i))); err != nil {
						t.Errorf("update: %v", err)
					}
				})
			}
			wg.Wait()
			c := get(k)
			if len(c.Lines) != 21 || c.Lines[0].SKU != "A" || c.Lines[0].Quantity != 20 {
				t.Fatalf("lines %q", quantities(c))
			}
		})

		t.Run("merge moves and retires", func(t *testing.T) {
			guest, user := testGuestKey("merge-guest"), UserKey("merge-user")
			for _, u := range []struct {
				k  Key
				fn func(*Cart) error
			}{{guest, add("A", 2, 100, at(1))}, {guest, add("B", 1, 200, at(2))}, {user, add("A", 1, 90, at(0))}} {
				if _, err := s.Update(ctx, u.k, u.fn); err != nil {
					t.Fatal(err)
				}
			}
			merged, err := s.Merge(ctx, guest, user, func(from Cart, to *Cart) error {
				for _, l := range from.Lines {
					if err := add(l.SKU, l.Quantity, l.AddedPrice.Amount, l.AddedAt)(to); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil || quantities(merged) != "A=3 B=1 " {
				t.Fatalf("merged %q, %v", quantities(merged), err)
			}
			if got := quantities(get(user)); got != "A=3 B=1 " {
				t.Fatalf("user cart %q", got)
			}
			if c := get(guest); len(c.Lines) != 0 {
				t.Fatalf("guest cart not retired: %q", quantities(c))
			}
			// A failing merge changes neither cart.
			if _, err := s.Update(ctx, guest, add("C", 1, 100, at(5))); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Merge(ctx, guest, user, func(Cart, *Cart) error { return errors.New("no") }); err == nil {
				t.Fatal("merge did not fail")
			}
			if quantities(get(guest)) != "C=1 " || quantities(get(user)) != "A=3 B=1 " {
				t.Fatalf("failed merge changed carts: guest %q user %q", quantities(get(guest)), quantities(get(user)))
			}
		})

		t.Run("guest carts expire, user carts persist", func(t *testing.T) {
			short := newStore(time.Second)
			guest, user := testGuestKey("expiring"), UserKey("staying")
			for _, k := range []Key{guest, user} {
				if _, err := short.Update(ctx, k, add("A", 1, 100, at(1))); err != nil {
					t.Fatal(err)
				}
			}
			// A write renews the TTL. (Sleeping is the point here: time
			// must pass; the margins are 400 ms either way.)
			time.Sleep(600 * time.Millisecond)
			if _, err := short.Update(ctx, guest, add("A", 1, 100, at(1))); err != nil {
				t.Fatal(err)
			}
			time.Sleep(600 * time.Millisecond)
			if c, err := short.Get(ctx, guest); err != nil || len(c.Lines) != 1 || c.Lines[0].Quantity != 2 {
				t.Fatalf("renewed guest cart: %v, %v", c.Lines, err)
			}
			eventually(t, "guest cart to expire", func() bool {
				c, err := short.Get(ctx, guest)
				return err == nil && len(c.Lines) == 0
			})
			n, err := short.Sweep(ctx)
			if _, sql := short.(*SQLStore); err != nil || (sql && n != 1) {
				t.Fatalf("sweep: %d, %v", n, err)
			}
			// Writing to an expired cart starts afresh.
			c, err := short.Update(ctx, guest, add("B", 1, 100, at(2)))
			if err != nil || quantities(c) != "B=1 " {
				t.Fatalf("expired cart reused: %q, %v", quantities(c), err)
			}
			if c, err := short.Get(ctx, user); err != nil || len(c.Lines) != 1 {
				t.Fatalf("user cart: %v, %v", c.Lines, err)
			}
		})
	})
}

// GuestKey derives a guest cart key from an arbitrary string, for store
// tests that need no real token.
func testGuestKey(s string) Key { return guestKey([]byte(s)) }

// TestRedisStoreDown: a Redis that does not answer is a retryable 503, not
// a 500.
func TestRedisStoreDown(t *testing.T) {
	t.Parallel()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: time.Second})
	t.Cleanup(func() { rdb.Close() })
	s := NewRedisStore(rdb, "down:", time.Hour)
	ctx := context.Background()
	_, getErr := s.Get(ctx, UserKey("u"))
	_, updErr := s.Update(ctx, UserKey("u"), func(*Cart) error { return nil })
	delErr := s.Delete(ctx, UserKey("u"))
	for name, err := range map[string]error{"get": getErr, "update": updErr, "delete": delErr} {
		if !errs.Is(err, errs.Unavailable) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
