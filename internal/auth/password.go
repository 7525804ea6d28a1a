package auth

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/subtle"
	_ "embed"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"

	"github.com/mallhive/mallhive/internal/platform/errs"
)

// Argon2id parameters. The defaults are OWASP's recommended minimum for
// argon2id (19 MiB, 2 passes, 1 lane); a HasherConfig may ask for more, never
// for less.
const (
	MinArgonMemoryKiB = 19 * 1024
	MinArgonTime      = 2
	MinArgonThreads   = 1

	// Upper bounds apply to the configuration and to every stored hash that
	// is parsed, so a hostile or corrupted row cannot make a login allocate
	// gigabytes or spin for minutes.
	MaxArgonMemoryKiB = 256 * 1024
	MaxArgonTime      = 16
	MaxArgonThreads   = 16

	argonSaltLen = 16
	argonKeyLen  = 32

	// MaxPasswordBytes bounds what is hashed at all; CheckPassword allows
	// 128 characters, at most 512 bytes of UTF-8.
	MaxPasswordBytes = 1024

	// maxEncodedHashLen bounds the PHC string before parsing; a default hash
	// is 97 characters.
	maxEncodedHashLen = 256
)

// Password length rules of CheckPassword, in characters (runes).
const (
	MinPasswordLen = 8
	MaxPasswordLen = 128
)

// ErrMalformedHash is wrapped by Verify when the stored hash is not a PHC
// argon2id string within bounds.
var ErrMalformedHash = errors.New("malformed password hash")

// HasherConfig sets the argon2id cost and how many hashes may run at once.
// Zero fields take the defaults (the minimum cost; runtime.NumCPU() hashes).
type HasherConfig struct {
	MemoryKiB uint32
	Time      uint32
	Threads   uint8
	// MaxConcurrent caps simultaneous hashes: each holds MemoryKiB of memory
	// and a core, so a burst of logins queues instead of exhausting the host.
	MaxConcurrent int
}

func (c HasherConfig) withDefaults() HasherConfig {
	if c.MemoryKiB == 0 {
		c.MemoryKiB = MinArgonMemoryKiB
	}
	if c.Time == 0 {
		c.Time = MinArgonTime
	}
	if c.Threads == 0 {
		c.Threads = MinArgonThreads
	}
	if c.MaxConcurrent == 0 {
		c.MaxConcurrent = runtime.NumCPU()
	}
	return c
}

// Validate refuses costs below the minimum or above the bounds.
func (c HasherConfig) Validate() error {
	c = c.withDefaults()
	var problems []string
	if c.MemoryKiB < MinArgonMemoryKiB || c.MemoryKiB > MaxArgonMemoryKiB {
		problems = append(problems, fmt.Sprintf("memory must be %d to %d KiB", MinArgonMemoryKiB, MaxArgonMemoryKiB))
	}
	if c.Time < MinArgonTime || c.Time > MaxArgonTime {
		problems = append(problems, fmt.Sprintf("time must be %d to %d", MinArgonTime, MaxArgonTime))
	}
	if c.Threads < MinArgonThreads || c.Threads > MaxArgonThreads {
		problems = append(problems, fmt.Sprintf("threads must be %d to %d", MinArgonThreads, MaxArgonThreads))
	}
	if c.MaxConcurrent < 1 {
		problems = append(problems, "max concurrent hashes must be at least 1")
	}
	if len(problems) > 0 {
		return fmt.Errorf("password hasher config: %s", strings.Join(problems, "; "))
	}
	return nil
}

// Hasher hashes and verifies passwords with argon2id, encoded in the PHC
// string format: $argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>. It is safe for
// concurrent use.
type Hasher struct {
	cfg   HasherConfig
	slots chan struct{}
	// decoy has the current parameters and a key no password derives to in
	// practice (all zeros); verifying against it costs exactly one hash.
	decoy string
}

// NewHasher returns a Hasher for cfg; it fails when cfg does not Validate.
func NewHasher(cfg HasherConfig) (*Hasher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	decoy := argonHash{memory: cfg.MemoryKiB, time: cfg.Time, threads: cfg.Threads,
		salt: make([]byte, argonSaltLen), key: make([]byte, argonKeyLen)}
	return &Hasher{cfg: cfg, slots: make(chan struct{}, cfg.MaxConcurrent), decoy: decoy.String()}, nil
}

// argonHash is a parsed PHC argon2id string.
type argonHash struct {
	memory  uint32
	time    uint32
	threads uint8
	salt    []byte
	key     []byte
}

var phcB64 = base64.RawStdEncoding.Strict()

func (a argonHash) String() string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, a.memory, a.time, a.threads,
		phcB64.EncodeToString(a.salt), phcB64.EncodeToString(a.key))
}

// parseHash parses a PHC argon2id string strictly: fixed field order, no
// optional fields, canonical decimals and base64, parameters within bounds.
// Anything it accepts re-encodes to the same string.
func parseHash(s string) (argonHash, error) {
	if len(s) > maxEncodedHashLen {
		return argonHash{}, fmt.Errorf("%w: too long", ErrMalformedHash)
	}
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" {
		return argonHash{}, fmt.Errorf("%w: want 5 fields", ErrMalformedHash)
	}
	if parts[1] != "argon2id" {
		return argonHash{}, fmt.Errorf("%w: not argon2id", ErrMalformedHash)
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return argonHash{}, fmt.Errorf("%w: unsupported version", ErrMalformedHash)
	}
	params := strings.Split(parts[3], ",")
	if len(params) != 3 {
		return argonHash{}, fmt.Errorf("%w: want m, t and p", ErrMalformedHash)
	}
	m, err := parseParam(params[0], "m=", MaxArgonMemoryKiB)
	if err != nil {
		return argonHash{}, err
	}
	t, err := parseParam(params[1], "t=", MaxArgonTime)
	if err != nil {
		return argonHash{}, err
	}
	p, err := parseParam(params[2], "p=", MaxArgonThreads)
	if err != nil {
		return argonHash{}, err
	}
	if t < 1 || p < 1 || m < 8*p {
		return argonHash{}, fmt.Errorf("%w: parameters too small", ErrMalformedHash)
	}
	salt, err := decodeB64(parts[4])
	if err != nil || len(salt) < 8 || len(salt) > 64 {
		return argonHash{}, fmt.Errorf("%w: bad salt", ErrMalformedHash)
	}
	key, err := decodeB64(parts[5])
	if err != nil || len(key) < 16 || len(key) > 64 {
		return argonHash{}, fmt.Errorf("%w: bad hash", ErrMalformedHash)
	}
	return argonHash{memory: m, time: t, threads: uint8(p), salt: salt, key: key}, nil
}

// decodeB64 decodes canonical unpadded standard base64. The decoder alone
// skips CR and LF, so the result is re-encoded and compared.
func decodeB64(s string) ([]byte, error) {
	b, err := phcB64.DecodeString(s)
	if err != nil {
		return nil, err
	}
	if phcB64.EncodeToString(b) != s {
		return nil, errors.New("non-canonical base64")
	}
	return b, nil
}

// parseParam reads "<prefix><decimal>" with no sign, no leading zeros and a
// value at most max.
func parseParam(s, prefix string, max uint32) (uint32, error) {
	digits, ok := strings.CutPrefix(s, prefix)
	if !ok || digits == "" || len(digits) > 10 || (len(digits) > 1 && digits[0] == '0') {
		return 0, fmt.Errorf("%w: bad parameter %q", ErrMalformedHash, prefix)
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%w: bad parameter %q", ErrMalformedHash, prefix)
		}
	}
	v, err := strconv.ParseUint(digits, 10, 32)
	if err != nil || v > uint64(max) {
		return 0, fmt.Errorf("%w: parameter %q out of bounds", ErrMalformedHash, prefix)
	}
	return uint32(v), nil
}

// acquire takes a hashing slot, or gives up when ctx ends.
func (h *Hasher) acquire(ctx context.Context) error {
	select {
	case h.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return &errs.Error{Code: errs.Unavailable, Message: "the server is busy, try again", Err: ctx.Err()}
	}
}

func (h *Hasher) release() { <-h.slots }

// Hash returns the PHC string of password with a fresh 16-byte salt. It
// returns an errs.Invalid error for passwords over MaxPasswordBytes and an
// errs.Unavailable error when ctx ends while waiting for a hashing slot.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	if len(password) > MaxPasswordBytes {
		return "", errs.Field("password", fmt.Sprintf("must be at most %d characters", MaxPasswordLen))
	}
	salt := make([]byte, argonSaltLen)
	_, _ = rand.Read(salt) // crypto/rand.Read never fails
	if err := h.acquire(ctx); err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	defer h.release()
	a := argonHash{memory: h.cfg.MemoryKiB, time: h.cfg.Time, threads: h.cfg.Threads, salt: salt}
	a.key = argon2.IDKey([]byte(password), salt, a.time, a.memory, a.threads, argonKeyLen)
	return a.String(), nil
}

// Verify reports whether password matches the stored PHC string encoded, and
// whether a match should be re-hashed because it was made with other
// parameters than the Hasher's. It returns an error wrapping ErrMalformedHash
// when encoded cannot be parsed (or is over the bounds), and an
// errs.Unavailable error when ctx ends while waiting for a hashing slot.
func (h *Hasher) Verify(ctx context.Context, password, encoded string) (ok, needsRehash bool, err error) {
	a, err := parseHash(encoded)
	if err != nil {
		return false, false, fmt.Errorf("verify password: %w", err)
	}
	if len(password) > MaxPasswordBytes {
		return false, false, nil
	}
	if err := h.acquire(ctx); err != nil {
		return false, false, fmt.Errorf("verify password: %w", err)
	}
	defer h.release()
	got := argon2.IDKey([]byte(password), a.salt, a.time, a.memory, a.threads, uint32(len(a.key)))
	if subtle.ConstantTimeCompare(got, a.key) != 1 {
		return false, false, nil
	}
	needsRehash = a.memory != h.cfg.MemoryKiB || a.time != h.cfg.Time || a.threads != h.cfg.Threads ||
		len(a.salt) != argonSaltLen || len(a.key) != argonKeyLen
	return true, needsRehash, nil
}

// Decoy spends the time of one Verify against a fixed hash and discards the
// result. Login calls it when the account does not exist, so the response
// time does not tell which email addresses are registered.
// It returns an errs.Unavailable error when ctx ends while waiting for a
// hashing slot.
func (h *Hasher) Decoy(ctx context.Context, password string) error {
	_, _, err := h.Verify(ctx, password, h.decoy)
	return err
}

// The common-password list: see the header of the file for its source
// (npm @zxcvbn-ts/language-common 4.1.3, MIT licence) and selection.
//
//go:embed commonpasswords.txt.gz
var commonPasswordsGz []byte

var commonPasswords = sync.OnceValues(func() (map[string]struct{}, error) {
	zr, err := gzip.NewReader(bytes.NewReader(commonPasswordsGz))
	if err != nil {
		return nil, fmt.Errorf("open common password list: %w", err)
	}
	set := make(map[string]struct{}, 18000)
	sc := bufio.NewScanner(zr)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		set[line] = struct{}{}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read common password list: %w", err)
	}
	return set, nil
})

// CheckPassword applies the password policy (NIST SP 800-63B style): 8 to
// 128 characters, any characters, no composition rules; not a commonly used
// or leaked password; not the account's email address, its local part or the
// user's name. It returns an errs.Invalid error naming the "password" field.
func CheckPassword(password, email, name string) error {
	if !utf8.ValidString(password) {
		return errs.Field("password", "must be valid text")
	}
	n := utf8.RuneCountInString(password)
	if n < MinPasswordLen {
		return errs.Field("password", fmt.Sprintf("must be at least %d characters", MinPasswordLen))
	}
	if n > MaxPasswordLen {
		return errs.Field("password", fmt.Sprintf("must be at most %d characters", MaxPasswordLen))
	}
	lower := strings.ToLower(password)
	if email = strings.ToLower(strings.TrimSpace(email)); email != "" {
		local := email
		if at := strings.LastIndexByte(email, '@'); at >= 0 {
			local = email[:at]
		}
		untagged, _, _ := strings.Cut(local, "+")
		if lower == email || lower == local || lower == untagged {
			return errs.Field("password", "must not be your email address")
		}
	}
	if squashed := strings.Join(strings.Fields(strings.ToLower(name)), ""); squashed != "" {
		if strings.Join(strings.Fields(lower), "") == squashed {
			return errs.Field("password", "must not be your name")
		}
	}
	common, err := commonPasswords()
	if err != nil {
		return fmt.Errorf("check password: %w", err)
	}
	if _, found := common[lower]; found {
		return errs.Field("password", "is too common: it appears in lists of leaked passwords; choose another")
	}
	return nil
}
