package auth

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/mallhive/mallhive/internal/platform/errs"
	"github.com/mallhive/mallhive/internal/platform/httpx"
)

// Login throttling.
//
// The goal is to make password guessing slow without letting an attacker
// lock the real owner out by failing on purpose. Failed attempts (a wrong
// password, a wrong second-factor code) are counted under three keys:
//
//   - pair:<email>|<address>  this account from this client address;
//   - acct:<email>            this account from anywhere;
//   - addr:<address>          this client address against any account.
//
// Before a password is checked, an attempt must wait (429 with Retry-After,
// no password check, no hash) when:
//
//   - the pair has failed more than PairFree times: exponential backoff from
//     its last failure (1s, 2s, 4s, ... up to MaxDelay);
//   - the account has failed more than AccountFree times AND this address
//     has failed on it at least once: the same backoff, counted on the
//     account's failures. So a distributed guesser gets at most one more
//     guess per fresh address once the account is under attack, while the
//     owner, from an address that has not failed (home, phone, office), still
//     signs in with the right password at once;
//   - the address has failed more than AddressFree times against any
//     accounts (credential stuffing from one host), with the same backoff.
//
// Nothing is ever locked: every delay ends, a success from an address
// clears that pair, and counts are forgotten Window after their last
// failure. Emails are throttled whether or not an account exists, so the
// throttle reveals nothing about which emails are registered. Counts live in
// the service's database, so every replica sees the same state.
//
// Second-factor codes have their own count, mfa:<user id>, which a correct
// password does not clear (it clears the pair): otherwise someone who has
// the password could sign in again and again to get fresh guesses at the
// 6-digit code. Past MFAFree wrong codes every second-factor attempt for the
// account waits out the backoff, from any address. Only a holder of the
// password can cause that delay, and a correct code (or recovery code)
// clears it.
//
// The trade-off is deliberate: an attacker with many addresses keeps one
// guess per address per account (slowed further by the argon2id cost and
// the per-address count), rather than any attacker being able to lock any
// account. Users behind one shared address (a big NAT) share its address
// count, which is why AddressFree is high.

// ThrottleConfig tunes login throttling.
type ThrottleConfig struct {
	// PairFree, AccountFree and AddressFree are the failures allowed before
	// backoff starts for a pair, an account, and an address.
	PairFree    int
	AccountFree int
	AddressFree int
	// MFAFree is the wrong second-factor codes allowed per account before
	// backoff starts.
	MFAFree int
	// BaseDelay is the first delay; each further failure doubles it, up to
	// MaxDelay.
	BaseDelay time.Duration
	MaxDelay  time.Duration
	// Window is how long after its last failure a count is forgotten.
	Window time.Duration
}

// DefaultThrottleConfig returns the defaults.
func DefaultThrottleConfig() ThrottleConfig {
	return ThrottleConfig{
		PairFree:    3,
		AccountFree: 10,
		AddressFree: 30,
		MFAFree:     5,
		BaseDelay:   time.Second,
		MaxDelay:    15 * time.Minute,
		Window:      24 * time.Hour,
	}
}

// RegisterFlags registers the throttle settings under "auth.throttle.".
func (c *ThrottleConfig) RegisterFlags(fs *flag.FlagSet) {
	d := DefaultThrottleConfig()
	fs.IntVar(&c.PairFree, "auth.throttle.pair-free", d.PairFree, "failed logins of one account from one address before backoff")
	fs.IntVar(&c.AccountFree, "auth.throttle.account-free", d.AccountFree, "failed logins of one account before addresses that failed on it must back off")
	fs.IntVar(&c.AddressFree, "auth.throttle.address-free", d.AddressFree, "failed logins from one address (any account) before backoff")
	fs.IntVar(&c.MFAFree, "auth.throttle.mfa-free", d.MFAFree, "wrong second-factor codes per account before backoff")
	fs.DurationVar(&c.BaseDelay, "auth.throttle.base-delay", d.BaseDelay, "first login backoff delay (doubles per failure)")
	fs.DurationVar(&c.MaxDelay, "auth.throttle.max-delay", d.MaxDelay, "longest login backoff delay")
	fs.DurationVar(&c.Window, "auth.throttle.window", d.Window, "how long failed logins are remembered")
}

func (c ThrottleConfig) withDefaults() ThrottleConfig {
	d := DefaultThrottleConfig()
	if c.PairFree == 0 {
		c.PairFree = d.PairFree
	}
	if c.AccountFree == 0 {
		c.AccountFree = d.AccountFree
	}
	if c.AddressFree == 0 {
		c.AddressFree = d.AddressFree
	}
	if c.MFAFree == 0 {
		c.MFAFree = d.MFAFree
	}
	if c.BaseDelay == 0 {
		c.BaseDelay = d.BaseDelay
	}
	if c.MaxDelay == 0 {
		c.MaxDelay = d.MaxDelay
	}
	if c.Window == 0 {
		c.Window = d.Window
	}
	return c
}

// Validate reports bad settings.
func (c ThrottleConfig) Validate() error {
	var problems []string
	if c.PairFree < 1 || c.AccountFree < 1 || c.AddressFree < 1 || c.MFAFree < 1 {
		problems = append(problems, "throttle free attempts must be at least 1")
	}
	if c.BaseDelay <= 0 || c.MaxDelay < c.BaseDelay {
		problems = append(problems, "throttle delays must be positive, max at least base")
	}
	if c.Window < c.MaxDelay {
		problems = append(problems, "throttle window must be at least the max delay")
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// backoff is the wait after failures beyond free: 0 up to free, then
// BaseDelay doubling per failure, capped at MaxDelay.
func (c ThrottleConfig) backoff(failures, free int) time.Duration {
	over := failures - free
	if over <= 0 {
		return 0
	}
	if over > 40 {
		return c.MaxDelay
	}
	d := float64(c.BaseDelay) * math.Pow(2, float64(over-1))
	if d >= float64(c.MaxDelay) {
		return c.MaxDelay
	}
	return time.Duration(d)
}

// throttle keys; the email is normalised, the address canonical.
func pairKey(email, addr string) string { return "pair:" + email + "|" + addr }
func accountKey(email string) string    { return "acct:" + email }
func addressKey(addr string) string     { return "addr:" + addr }
func mfaKey(userID string) string       { return "mfa:" + userID }

// throttleWait returns how long an attempt on email from addr must wait
// (0: go ahead).
func (s *Service) throttleWait(ctx context.Context, email, addr string) (time.Duration, error) {
	c, now := s.cfg.Throttle, s.now()
	entries, err := s.store.ThrottleEntries(ctx, pairKey(email, addr), accountKey(email), addressKey(addr))
	if err != nil {
		return 0, err
	}
	forget := now.Add(-c.Window)
	live := func(key string) (ThrottleEntry, bool) {
		e, ok := entries[key]
		if !ok || e.LastFailure.Before(forget) {
			return ThrottleEntry{}, false
		}
		return e, true
	}
	var until time.Time
	later := func(t time.Time) {
		if t.After(until) {
			until = t
		}
	}
	pair, pairFailed := live(pairKey(email, addr))
	if pairFailed {
		later(pair.LastFailure.Add(c.backoff(pair.Failures, c.PairFree)))
		if acct, ok := live(accountKey(email)); ok {
			later(acct.LastFailure.Add(c.backoff(acct.Failures, c.AccountFree)))
		}
	}
	if a, ok := live(addressKey(addr)); ok {
		later(a.LastFailure.Add(c.backoff(a.Failures, c.AddressFree)))
	}
	if wait := until.Sub(now); wait > 0 {
		return wait, nil
	}
	return 0, nil
}

// mfaWait returns how long a second-factor attempt for userID must wait.
func (s *Service) mfaWait(ctx context.Context, userID string) (time.Duration, error) {
	c, now := s.cfg.Throttle, s.now()
	entries, err := s.store.ThrottleEntries(ctx, mfaKey(userID))
	if err != nil {
		return 0, err
	}
	e, ok := entries[mfaKey(userID)]
	if !ok || e.LastFailure.Before(now.Add(-c.Window)) {
		return 0, nil
	}
	return max(0, e.LastFailure.Add(c.backoff(e.Failures, c.MFAFree)).Sub(now)), nil
}

// throttleFail counts a failed attempt under all three keys.
func (s *Service) throttleFail(ctx context.Context, email, addr string) error {
	now := s.now()
	forget := now.Add(-s.cfg.Throttle.Window)
	return s.store.InTx(ctx, func(q *Queries) error {
		for _, k := range []string{pairKey(email, addr), accountKey(email), addressKey(addr)} {
			if err := q.ThrottleFail(ctx, k, now, forget); err != nil {
				return err
			}
		}
		return nil
	})
}

// throttleSuccess clears the pair: the owner's own address is trusted again.
// The account count stays, so addresses that failed keep backing off.
func (s *Service) throttleSuccess(ctx context.Context, email, addr string) error {
	return s.store.ThrottleReset(ctx, pairKey(email, addr))
}

// tooManyAttempts is the 429 an attempt gets while it must wait. Its
// RetryAfter method is what httpx.WriteError looks for to send the
// Retry-After header.
type tooManyAttempts struct{ wait time.Duration }

func (t *tooManyAttempts) Error() string { return "too many failed sign-in attempts" }

// RetryAfter is how long the attempt must wait.
func (t *tooManyAttempts) RetryAfter() time.Duration { return t.wait }

func throttledError(wait time.Duration) error {
	return &errs.Error{Code: errs.TooManyRequests,
		Message: fmt.Sprintf("too many failed sign-in attempts; try again in %d seconds", retryAfterSeconds(wait)),
		Err:     &tooManyAttempts{wait: wait}}
}

// retryAfterSeconds is a wait in the whole seconds of a Retry-After header,
// rounded as httpx.WriteError rounds it (up, at least 1), so that the
// message and the header name the same number.
func retryAfterSeconds(d time.Duration) int64 {
	return max(1, int64(math.Ceil(d.Seconds())))
}

// ---- client addresses ----

// clientAddr is the caller's address for throttling: the one the process's
// httpx.ClientIPs middleware worked out (it believes X-Forwarded-For only
// from --trusted-proxies), else the connection's peer. IPv6 addresses are
// reduced to their /64, since one host usually holds a whole /64.
func (s *Service) clientAddr(r *http.Request) string {
	a := parseAddr(httpx.ClientIP(r.Context()))
	if !a.IsValid() {
		a = parseAddr(r.RemoteAddr)
	}
	if !a.IsValid() {
		return "unknown"
	}
	if a.Is6() && !a.Is4In6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.Unmap().String()
}

func parseAddr(s string) netip.Addr {
	if host, _, err := net.SplitHostPort(s); err == nil {
		s = host
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}
	}
	return a.WithZone("")
}
