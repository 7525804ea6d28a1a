package cart

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mallhive/mallhive/internal/platform/errs"
	"github.com/mallhive/mallhive/internal/platform/money"
)

// RedisStore keeps each cart in a Redis hash, one field per SKU. Writes are
// optimistic transactions (WATCH, then MULTI/EXEC) retried on conflict, so a
// bounded add or a merge never interleaves with another write of the same
// cart. Guest carts carry a TTL renewed on every write; Redis expires them.
type RedisStore struct {
	rdb      *redis.Client
	prefix   string
	guestTTL time.Duration
}

// NewRedisStore returns a cart store on rdb whose keys start with prefix
// (e.g. "mallhive:") and whose guest carts live guestTTL after their last
// write.
func NewRedisStore(rdb *redis.Client, prefix string, guestTTL time.Duration) *RedisStore {
	return &RedisStore{rdb: rdb, prefix: prefix, guestTTL: guestTTL}
}

// redisAttempts bounds the retries of a write that keeps losing its WATCH.
const redisAttempts = 100

func (s *RedisStore) key(k Key) string { return s.prefix + "cart:" + k.String() }

// redisLine is a line as stored in a hash field named by its SKU.
type redisLine struct {
	Quantity int    `json:"q"`
	Amount   int64  `json:"a"`
	Currency string `json:"c"`
	AddedAt  int64  `json:"t"` // Unix microseconds, as precise as PostgreSQL
}

func (s *RedisStore) read(ctx context.Context, c redis.Cmdable, key string) (Cart, error) {
	fields, err := c.HGetAll(ctx, key).Result()
	if err != nil {
		return Cart{}, fmt.Errorf("read cart: %w", err)
	}
	var cart Cart
	for sku, raw := range fields {
		var rl redisLine
		if err := json.Unmarshal([]byte(raw), &rl); err != nil {
			return Cart{}, fmt.Errorf("decode cart line %s: %w", sku, err)
		}
		cart.Lines = append(cart.Lines, Line{
			SKU: sku, Quantity: rl.Quantity,
			AddedPrice: money.Money{Amount: rl.Amount, Currency: rl.Currency},
			AddedAt:    time.UnixMicro(rl.AddedAt).UTC(),
		})
	}
	cart.sortLines()
	return cart, nil
}

// write queues the commands that replace the stored cart with c.
func (s *RedisStore) write(ctx context.Context, p redis.Pipeliner, k Key, c Cart) error {
	key := s.key(k)
	p.Del(ctx, key)
	if len(c.Lines) == 0 {
		return nil
	}
	fields := make([]any, 0, 2*len(c.Lines))
	for _, l := range c.Lines {
		raw, err := json.Marshal(redisLine{Quantity: l.Quantity, Amount: l.AddedPrice.Amount,
			Currency: l.AddedPrice.Currency, AddedAt: l.AddedAt.UnixMicro()})
		if err != nil {
			return err
		}
		fields = append(fields, l.SKU, string(raw))
	}
	p.HSet(ctx, key, fields...)
	if k.Guest() {
		p.PExpire(ctx, key, s.guestTTL)
	}
	return nil
}

// Get implements Store.
func (s *RedisStore) Get(ctx context.Context, key Key) (Cart, error) {
	c, err := s.read(ctx, s.rdb, s.key(key))
	return c, redisError(err)
}

// redisError reports a failure of Redis itself as Unavailable (503): the
// caller may retry. Domain errors and cancellations pass unchanged.
func redisError(err error) error {
	if err == nil || errs.CodeOf(err) != errs.Internal || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return &errs.Error{Code: errs.Unavailable, Message: "the cart store is unavailable; try again later", Err: err}
}

// Update implements Store.
func (s *RedisStore) Update(ctx context.Context, key Key, fn func(c *Cart) error) (Cart, error) {
	var out Cart
	err := s.optimistic(ctx, func(tx *redis.Tx) error {
		c, err := s.read(ctx, tx, s.key(key))
		if err != nil {
			return err
		}
		if err := fn(&c); err != nil {
			return err
		}
		var werr error
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			werr = s.write(ctx, p, key, c)
			return werr
		})
		if werr != nil {
			return werr
		}
		out = c
		return err
	}, s.key(key))
	return out, err
}

// Merge implements Store.
func (s *RedisStore) Merge(ctx context.Context, from, to Key, fn func(from Cart, to *Cart) error) (Cart, error) {
	var out Cart
	err := s.optimistic(ctx, func(tx *redis.Tx) error {
		src, err := s.read(ctx, tx, s.key(from))
		if err != nil {
			return err
		}
		c, err := s.read(ctx, tx, s.key(to))
		if err != nil {
			return err
		}
		if err := fn(src, &c); err != nil {
			return err
		}
		var werr error
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			werr = s.write(ctx, p, to, c)
			p.Del(ctx, s.key(from))
			return werr
		})
		if werr != nil {
			return werr
		}
		out = c
		return err
	}, s.key(from), s.key(to))
	return out, err
}

// optimistic runs fn under WATCH of keys until its transaction executes
// without a concurrent write of the keys.
func (s *RedisStore) optimistic(ctx context.Context, fn func(tx *redis.Tx) error, keys ...string) error {
	for attempt := range redisAttempts {
		err := s.rdb.Watch(ctx, fn, keys...)
		if !errors.Is(err, redis.TxFailedErr) {
			return redisError(err)
		}
		// Lost the race: back off a little, more after each loss.
		d := time.Duration(rand.Int64N(int64(time.Millisecond)*int64(min(attempt+1, 10)))) + 100*time.Microsecond
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
		}
	}
	return errs.E(errs.Unavailable, "the cart is busy; try again")
}

// Delete implements Store.
func (s *RedisStore) Delete(ctx context.Context, key Key) error {
	return redisError(s.rdb.Del(ctx, s.key(key)).Err())
}

// Sweep implements Store; Redis expires guest carts by itself.
func (s *RedisStore) Sweep(context.Context) (int, error) { return 0, nil }
