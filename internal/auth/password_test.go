package auth

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/mallhive/mallhive/internal/platform/errs"
)

// testHasher is shared by the tests of this file: argon2id at the minimum
// cost takes tens of milliseconds, so hashes are made once where possible.
func testHasher(tb testing.TB) *Hasher {
	tb.Helper()
	h, err := NewHasher(HasherConfig{})
	if err != nil {
		tb.Fatal(err)
	}
	return h
}

func TestHasherHashAndVerify(t *testing.T) {
	t.Parallel()
	h := testHasher(t)
	ctx := t.Context()
	const pw = "correct horse battery staple"
	encoded, err := h.Hash(ctx, pw)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(encoded, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("encoded = %q, want the PHC argon2id prefix with the minimum parameters", encoded)
	}
	a, err := parseHash(encoded)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.salt) != 16 || len(a.key) != 32 {
		t.Fatalf("salt %d bytes, key %d bytes; want 16 and 32", len(a.salt), len(a.key))
	}
	again, err := h.Hash(ctx, pw)
	if err != nil {
		t.Fatal(err)
	}
	if again == encoded {
		t.Fatal("two hashes of one password are equal: salt is not random")
	}

	stronger, err := NewHasher(HasherConfig{MemoryKiB: MinArgonMemoryKiB + 1024, Time: 3})
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name        string
		hasher      *Hasher
		password    string
		encoded     string
		wantOK      bool
		wantRehash  bool
		wantErrLike error
	}{
		{name: "right password", hasher: h, password: pw, encoded: encoded, wantOK: true},
		{name: "wrong password", hasher: h, password: "correct horse battery stapler", encoded: encoded},
		{name: "empty password", hasher: h, password: "", encoded: encoded},
		{name: "over the byte limit", hasher: h, password: strings.Repeat("x", MaxPasswordBytes+1), encoded: encoded},
		{name: "right password, stronger hasher asks to rehash", hasher: stronger, password: pw, encoded: encoded, wantOK: true, wantRehash: true},
		{name: "wrong password, stronger hasher", hasher: stronger, password: "nope", encoded: encoded},
		{name: "malformed stored hash", hasher: h, password: pw, encoded: "$2a$10$abcdefghijklmnopqrstuv", wantErrLike: ErrMalformedHash},
		{name: "hostile memory cost", hasher: h, password: pw, encoded: "$argon2id$v=19$m=4194304,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$" + strings.Repeat("A", 43), wantErrLike: ErrMalformedHash},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ok, rehash, err := tt.hasher.Verify(t.Context(), tt.password, tt.encoded)
			if tt.wantErrLike != nil {
				if !errors.Is(err, tt.wantErrLike) {
					t.Fatalf("err = %v, want %v", err, tt.wantErrLike)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ok != tt.wantOK || rehash != tt.wantRehash {
				t.Fatalf("Verify = %v, %v; want %v, %v", ok, rehash, tt.wantOK, tt.wantRehash)
			}
		})
	}
}

func TestHasherRehashOfWeakerParameters(t *testing.T) {
	t.Parallel()
	// A hash made with other (here: weaker, legacy) parameters still verifies
	// and is flagged for re-hashing.
	h := testHasher(t)
	weak := argonHash{memory: 8 * 1024, time: 1, threads: 1, salt: []byte("0123456789abcdef")}
	weak.key = argon2.IDKey([]byte("hunter2hunter2"), weak.salt, weak.time, weak.memory, weak.threads, 32)
	ok, rehash, err := h.Verify(t.Context(), "hunter2hunter2", weak.String())
	if err != nil || !ok || !rehash {
		t.Fatalf("Verify = %v, %v, %v; want true, true, nil", ok, rehash, err)
	}
}

func TestHasherDecoyNeverMatches(t *testing.T) {
	t.Parallel()
	h := testHasher(t)
	ok, _, err := h.Verify(t.Context(), "", h.decoy)
	if err != nil || ok {
		t.Fatalf("decoy Verify = %v, %v", ok, err)
	}
	if err := h.Decoy(t.Context(), "anything"); err != nil {
		t.Fatal(err)
	}
}

func TestHasherCapsConcurrencyAndHonoursContext(t *testing.T) {
	t.Parallel()
	h, err := NewHasher(HasherConfig{MaxConcurrent: 1})
	if err != nil {
		t.Fatal(err)
	}
	// Hold the only slot, as a long hash would.
	if err := h.acquire(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if _, err := h.Hash(ctx, "waiting for a slot"); !errs.Is(err, errs.Unavailable) {
		t.Fatalf("Hash with the slot taken: err = %v, want unavailable", err)
	}
	if _, _, err := h.Verify(ctx, "x", h.decoy); !errs.Is(err, errs.Unavailable) {
		t.Fatalf("Verify with the slot taken: err = %v, want unavailable", err)
	}
	h.release()

	// With the slot free, concurrent hashes never exceed the cap.
	var running, peak atomic.Int32
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			if err := h.acquire(t.Context()); err != nil {
				t.Error(err)
				return
			}
			n := running.Add(1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			time.Sleep(5 * time.Millisecond) // hold the slot as a hash would
			running.Add(-1)
			h.release()
		})
	}
	wg.Wait()
	if p := peak.Load(); p != 1 {
		t.Fatalf("peak concurrency %d, want 1", p)
	}
}

func TestHasherConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  HasherConfig
		ok   bool
	}{
		{"defaults", HasherConfig{}, true},
		{"stronger", HasherConfig{MemoryKiB: 64 * 1024, Time: 3, Threads: 2, MaxConcurrent: 4}, true},
		{"memory below minimum", HasherConfig{MemoryKiB: 16 * 1024}, false},
		{"memory above bound", HasherConfig{MemoryKiB: MaxArgonMemoryKiB + 1}, false},
		{"one pass", HasherConfig{Time: 1}, false},
		{"too many passes", HasherConfig{Time: MaxArgonTime + 1}, false},
		{"too many threads", HasherConfig{Threads: MaxArgonThreads + 1}, false},
		{"negative concurrency", HasherConfig{MaxConcurrent: -1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.cfg.Validate()
			if (err == nil) != tt.ok {
				t.Fatalf("Validate = %v, want ok=%v", err, tt.ok)
			}
			if _, err := NewHasher(tt.cfg); (err == nil) != tt.ok {
				t.Fatalf("NewHasher = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

const validHash = "$argon2id$v=19$m=19456,t=2,p=1$MDEyMzQ1Njc4OWFiY2RlZg$" +
	"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

func TestParseHash(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		encoded string
		ok      bool
	}{
		{"canonical", validHash, true},
		{"argon2i", strings.Replace(validHash, "argon2id", "argon2i", 1), false},
		{"version 16", strings.Replace(validHash, "v=19", "v=16", 1), false},
		{"missing version", strings.Replace(validHash, "$v=19", "", 1), false},
		{"params out of order", strings.Replace(validHash, "m=19456,t=2,p=1", "t=2,m=19456,p=1", 1), false},
		{"extra param", strings.Replace(validHash, "p=1", "p=1,keyid=x", 1), false},
		{"leading zero", strings.Replace(validHash, "m=19456", "m=019456", 1), false},
		{"plus sign", strings.Replace(validHash, "t=2", "t=+2", 1), false},
		{"negative", strings.Replace(validHash, "t=2", "t=-2", 1), false},
		{"zero time", strings.Replace(validHash, "t=2", "t=0", 1), false},
		{"zero threads", strings.Replace(validHash, "p=1", "p=0", 1), false},
		{"memory below 8p", strings.Replace(validHash, "m=19456,t=2,p=1", "m=8,t=2,p=2", 1), false},
		{"4 GiB memory", strings.Replace(validHash, "m=19456", "m=4194304", 1), false},
		{"uint32 overflow", strings.Replace(validHash, "m=19456", "m=99999999999", 1), false},
		{"huge time", strings.Replace(validHash, "t=2", "t=4294967295", 1), false},
		{"256 threads", strings.Replace(validHash, "p=1", "p=256", 1), false},
		{"padded salt", strings.Replace(validHash, "RlZg$", "RlZg==$", 1), false},
		{"url-safe base64", strings.Replace(validHash, "AAAA", "-_AA", 1), false},
		{"non-canonical trailing bits", strings.TrimSuffix(validHash, "A") + "B", false},
		{"short salt", "$argon2id$v=19$m=19456,t=2,p=1$YWJj$" + strings.Repeat("A", 43), false},
		{"short key", "$argon2id$v=19$m=19456,t=2,p=1$MDEyMzQ1Njc4OWFiY2RlZg$AAAA", false},
		{"CR inside the hash", strings.Replace(validHash, "AAAA", "AA\rAA", 1), false},
		{"LF inside the salt", strings.Replace(validHash, "MDEy", "MD\nEy", 1), false},
		{"trailing field", validHash + "$", false},
		{"no leading dollar", strings.TrimPrefix(validHash, "$"), false},
		{"empty", "", false},
		{"too long", validHash + strings.Repeat("A", 300), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a, err := parseHash(tt.encoded)
			if (err == nil) != tt.ok {
				t.Fatalf("parseHash(%q) err = %v, want ok=%v", tt.encoded, err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrMalformedHash) {
				t.Fatalf("err = %v does not wrap ErrMalformedHash", err)
			}
			if err == nil && a.String() != tt.encoded {
				t.Fatalf("re-encoded %q, want %q", a.String(), tt.encoded)
			}
		})
	}
}

func FuzzParseHash(f *testing.F) {
	f.Add(validHash)
	f.Add("$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA")
	f.Add("$argon2id$v=19$m=4294967295,t=1,p=1$c2FsdA$aGFzaA")
	f.Add("$argon2i$v=19$m=19456,t=2,p=1$$")
	f.Add("$argon2id$v=19$m=10,t=1,p=1$00000000000$000000000000000000\r00000")
	f.Add("$$$$$")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		a, err := parseHash(s)
		if err != nil {
			if !errors.Is(err, ErrMalformedHash) {
				t.Fatalf("error %v does not wrap ErrMalformedHash", err)
			}
			return
		}
		// Whatever parses is canonical and within bounds.
		if a.String() != s {
			t.Fatalf("re-encoded %q, want %q", a.String(), s)
		}
		if a.memory > MaxArgonMemoryKiB || a.time > MaxArgonTime || a.threads > MaxArgonThreads ||
			a.time < 1 || a.threads < 1 || uint32(a.threads)*8 > a.memory {
			t.Fatalf("parameters out of bounds: m=%d t=%d p=%d", a.memory, a.time, a.threads)
		}
	})
}

func TestCheckPassword(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		password string
		email    string
		userName string
		problem  string // "" means accepted
	}{
		{name: "long random", password: "vivid-otter-candle-97", email: "alice@example.com", userName: "Alice Smith"},
		{name: "exactly 8", password: "q7!vXz#2", email: "a@example.com"},
		{name: "exactly 128", password: strings.Repeat("ab1", 42) + "xy", email: "a@example.com"},
		{name: "unicode counted in runes", password: "ÄÖÜäöüßé", email: "a@example.com"},
		{name: "emoji", password: "🦊🦊🐙🐙🌵🌵🍕🍕", email: "a@example.com"},
		{name: "spaces allowed", password: "a sentence with spaces", email: "a@example.com"},
		{name: "7 characters", password: "q7!vXz#", problem: "at least 8"},
		{name: "empty", password: "", problem: "at least 8"},
		{name: "7 multi-byte runes", password: "äöüßéèà", problem: "at least 8"},
		{name: "129 characters", password: strings.Repeat("x", 129), problem: "at most 128"},
		{name: "invalid UTF-8", password: "abc\xffdefgh", problem: "valid text"},
		{name: "common", password: "password", problem: "too common"},
		{name: "common, other case", password: "PassWord", problem: "too common"},
		{name: "common digits", password: "12345678", problem: "too common"},
		{name: "common keyboard walk", password: "qwertyuiop", problem: "too common"},
		{name: "common phrase", password: "iloveyou2", problem: "too common"},
		{name: "email", password: "alice@example.com", email: "Alice@Example.com", problem: "email"},
		{name: "email local part", password: "alice.smith", email: "alice.smith@example.com", problem: "email"},
		{name: "email local part, other case", password: "Alice.Smith", email: "alice.smith@example.com", problem: "email"},
		{name: "email local part without +tag", password: "alicesmith", email: "alicesmith+shop@example.com", problem: "email"},
		{name: "name", password: "Alice Smith", email: "a@example.com", userName: "alice smith", problem: "name"},
		{name: "name without spaces", password: "alicesmith", email: "a@example.com", userName: "Alice Smith", problem: "name"},
		{name: "contains but is not the name", password: "alice smith rocks", email: "a@example.com", userName: "Alice Smith"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := CheckPassword(tt.password, tt.email, tt.userName)
			if tt.problem == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var e *errs.Error
			if !errors.As(err, &e) || e.Code != errs.Invalid {
				t.Fatalf("err = %v, want an invalid field error", err)
			}
			if !strings.Contains(e.Fields["password"], tt.problem) {
				t.Fatalf("password problem = %q, want it to mention %q", e.Fields["password"], tt.problem)
			}
		})
	}
}

func TestCommonPasswordList(t *testing.T) {
	t.Parallel()
	set, err := commonPasswords()
	if err != nil {
		t.Fatal(err)
	}
	if n := len(set); n < 10_000 || n > 100_000 {
		t.Fatalf("%d common passwords, want 10k to 100k", n)
	}
	for pw := range set {
		if strings.HasPrefix(pw, "#") || pw != strings.ToLower(pw) {
			t.Fatalf("entry %q is not a lower-case password (header leaked into the set?)", pw)
		}
	}
}
