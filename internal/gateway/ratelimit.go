package gateway

import (
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/mallhive/mallhive/internal/platform/httpx"
)

// RateLimiter allows each client address a token bucket of requests on
// /api/; an empty bucket answers 429 with Retry-After.
type RateLimiter struct {
	limit rate.Limit
	burst int

	mu      sync.Mutex
	clients map[string]*client
	sweep   time.Time
}

type client struct {
	lim  *rate.Limiter
	seen time.Time
}

// NewRateLimiter returns nil when perSecond is 0 (no limit).
func NewRateLimiter(perSecond float64, burst int) *RateLimiter {
	if perSecond <= 0 {
		return nil
	}
	return &RateLimiter{limit: rate.Limit(perSecond), burst: max(burst, 1), clients: map[string]*client{}}
}

// Middleware limits requests whose path starts with /api/. Loopback
// clients (the machine itself: the demo seeder, probes, a sidecar) are not
// limited; behind a proxy the client address is the forwarded one.
func (l *RateLimiter) Middleware(next http.Handler) http.Handler {
	if l == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/api/") {
			next.ServeHTTP(w, r)
			return
		}
		ip := httpx.ClientIP(r.Context())
		if a, err := netip.ParseAddr(ip); err == nil && a.IsLoopback() {
			next.ServeHTTP(w, r)
			return
		}
		res := l.reserve(ip)
		if d := res.Delay(); d > 0 {
			res.Cancel()
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(d.Seconds()))))
			httpx.WriteProblem(w, r, httpx.Problem{Status: http.StatusTooManyRequests, Code: "too_many_requests", Detail: "too many requests from this address; slow down"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (l *RateLimiter) reserve(key string) *rate.Reservation {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	// Forget idle clients now and then, so memory stays bounded by the
	// number of active clients.
	if now.Sub(l.sweep) > time.Minute {
		for k, c := range l.clients {
			if now.Sub(c.seen) > 5*time.Minute {
				delete(l.clients, k)
			}
		}
		l.sweep = now
	}
	c, ok := l.clients[key]
	if !ok {
		c = &client{lim: rate.NewLimiter(l.limit, l.burst)}
		l.clients[key] = c
	}
	c.seen = now
	return c.lim.ReserveN(now, 1)
}
