package auth

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
)

// rfc6238Secret is the SHA-1 seed of RFC 6238 appendix B ("12345678901234567890"), base32.
const rfc6238Secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"

func TestNewTOTPSecret(t *testing.T) {
	t.Parallel()
	secret, raw, err := NewTOTPSecret("MallHive", "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if len(secret) != 32 { // 20 bytes, base32 without padding
		t.Fatalf("secret %q has %d characters, want 32", secret, len(secret))
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if u.Scheme != "otpauth" || u.Host != "totp" || q.Get("secret") != secret || q.Get("issuer") != "MallHive" ||
		q.Get("digits") != "6" || q.Get("period") != "30" || q.Get("algorithm") != "SHA1" {
		t.Fatalf("otpauth URL %s", raw)
	}
	if !strings.Contains(u.Path, "alice@example.com") {
		t.Fatalf("otpauth URL %s does not name the account", raw)
	}
	if _, _, err := NewTOTPSecret("", "alice@example.com"); err == nil {
		t.Fatal("secret without issuer")
	}
	other, _, _ := NewTOTPSecret("MallHive", "alice@example.com")
	if other == secret {
		t.Fatal("two secrets are equal")
	}
}

func TestMatchTOTP(t *testing.T) {
	t.Parallel()
	// RFC 6238 appendix B, SHA-1, truncated to 6 digits: T=59 gives 94287082.
	at59 := time.Unix(59, 0)
	if step, ok := MatchTOTP(rfc6238Secret, "287082", at59); !ok || step != 1 {
		t.Fatalf("RFC 6238 vector: step %d ok %v", step, ok)
	}
	// T=1111111109 gives 07081804.
	at := time.Unix(1111111109, 0)
	if !VerifyTOTP(rfc6238Secret, "081804", at) {
		t.Fatal("RFC 6238 vector at 1111111109 refused")
	}

	secret, _, err := NewTOTPSecret("MallHive", "bob@example.com")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 5, 1, 12, 0, 15, 0, time.UTC)
	codeAt := func(t *testing.T, when time.Time) string {
		t.Helper()
		c, err := totp.GenerateCode(secret, when)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	step := TOTPStep(now)
	current := codeAt(t, now)

	tests := []struct {
		name     string
		secret   string
		code     string
		wantOK   bool
		wantStep int64
	}{
		{name: "current step", secret: secret, code: current, wantOK: true, wantStep: step},
		{name: "previous step", secret: secret, code: codeAt(t, now.Add(-TOTPPeriod)), wantOK: true, wantStep: step - 1},
		{name: "next step", secret: secret, code: codeAt(t, now.Add(TOTPPeriod)), wantOK: true, wantStep: step + 1},
		{name: "two steps ago", secret: secret, code: codeAt(t, now.Add(-2*TOTPPeriod))},
		{name: "two steps ahead", secret: secret, code: codeAt(t, now.Add(2*TOTPPeriod))},
		{name: "with a space", secret: secret, code: current[:3] + " " + current[3:], wantOK: true, wantStep: step},
		{name: "lower-case secret", secret: strings.ToLower(secret), code: current, wantOK: true, wantStep: step},
		{name: "five digits", secret: secret, code: current[:5]},
		{name: "seven digits", secret: secret, code: current + "0"},
		{name: "letters", secret: secret, code: "abcdef"},
		{name: "empty code", secret: secret, code: ""},
		{name: "empty secret", secret: "", code: current},
		{name: "bad secret", secret: "not base32!", code: current},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			gotStep, ok := MatchTOTP(tt.secret, tt.code, now)
			if ok != tt.wantOK || (ok && gotStep != tt.wantStep) {
				t.Fatalf("MatchTOTP = %d, %v; want %d, %v", gotStep, ok, tt.wantStep, tt.wantOK)
			}
			if VerifyTOTP(tt.secret, tt.code, now) != tt.wantOK {
				t.Fatal("VerifyTOTP disagrees with MatchTOTP")
			}
		})
	}
}

func TestMatchTOTPReplayGuard(t *testing.T) {
	t.Parallel()
	// How a store uses the matched step: accept only steps after the last
	// accepted one, so the same code (or an older one) cannot be used twice.
	secret, _, err := NewTOTPSecret("MallHive", "carol@example.com")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	code, _ := totp.GenerateCode(secret, now)
	var lastStep int64 = -1
	accept := func(code string, at time.Time) bool {
		step, ok := MatchTOTP(secret, code, at)
		if !ok || step <= lastStep {
			return false
		}
		lastStep = step
		return true
	}
	if !accept(code, now) {
		t.Fatal("first use refused")
	}
	if accept(code, now.Add(10*time.Second)) {
		t.Fatal("replay within the step accepted")
	}
	if accept(code, now.Add(TOTPPeriod)) {
		t.Fatal("replay in the next step (still within skew) accepted")
	}
	next, _ := totp.GenerateCode(secret, now.Add(TOTPPeriod))
	if !accept(next, now.Add(TOTPPeriod)) {
		t.Fatal("the next step's code refused")
	}
}

func TestRecoveryCodes(t *testing.T) {
	t.Parallel()
	plain, hashed := NewRecoveryCodes(0)
	if len(plain) != DefaultRecoveryCodes || len(hashed) != DefaultRecoveryCodes {
		t.Fatalf("%d codes, %d hashes; want %d", len(plain), len(hashed), DefaultRecoveryCodes)
	}
	seen := map[string]bool{}
	for i, c := range plain {
		if len(c) != 11 || c[5] != '-' {
			t.Fatalf("code %q is not xxxxx-xxxxx", c)
		}
		if strings.ContainsAny(c, "ilou") {
			t.Fatalf("code %q holds an ambiguous character", c)
		}
		if hashed[i] == c || strings.Contains(hashed[i], strings.ReplaceAll(c, "-", "")) {
			t.Fatalf("hash %q reveals code %q", hashed[i], c)
		}
		if seen[c] {
			t.Fatalf("code %q repeated", c)
		}
		seen[c] = true
	}
	if p, h := NewRecoveryCodes(3); len(p) != 3 || len(h) != 3 {
		t.Fatalf("NewRecoveryCodes(3) made %d", len(p))
	}

	code := plain[4]
	confusable := strings.NewReplacer("0", "O", "1", "l").Replace(strings.ToUpper(code))
	tests := []struct {
		name      string
		code      string
		hashed    []string
		wantIndex int
		wantOK    bool
	}{
		{name: "as shown", code: code, hashed: hashed, wantIndex: 4, wantOK: true},
		{name: "upper case", code: strings.ToUpper(code), hashed: hashed, wantIndex: 4, wantOK: true},
		{name: "no dash", code: strings.ReplaceAll(code, "-", ""), hashed: hashed, wantIndex: 4, wantOK: true},
		{name: "spaces", code: " " + strings.ReplaceAll(code, "-", " ") + " ", hashed: hashed, wantIndex: 4, wantOK: true},
		{name: "O for 0, l for 1", code: confusable, hashed: hashed, wantIndex: 4, wantOK: true},
		{name: "first code", code: plain[0], hashed: hashed, wantIndex: 0, wantOK: true},
		{name: "used code removed", code: code, hashed: append(append([]string{}, hashed[:4]...), hashed[5:]...), wantIndex: -1},
		{name: "one character off", code: flipLast(code), hashed: hashed, wantIndex: -1},
		{name: "too short", code: code[:9], hashed: hashed, wantIndex: -1},
		{name: "too long", code: code + "a", hashed: hashed, wantIndex: -1},
		{name: "foreign character", code: strings.Replace(code, code[:1], "u", 1), hashed: hashed, wantIndex: -1},
		{name: "empty", code: "", hashed: hashed, wantIndex: -1},
		{name: "no hashes", code: code, hashed: nil, wantIndex: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			idx, ok := MatchRecoveryCode(tt.code, tt.hashed)
			if idx != tt.wantIndex || ok != tt.wantOK {
				t.Fatalf("MatchRecoveryCode(%q) = %d, %v; want %d, %v", tt.code, idx, ok, tt.wantIndex, tt.wantOK)
			}
		})
	}
}

// flipLast changes the last character of a code to another valid one.
func flipLast(code string) string {
	last := code[len(code)-1]
	repl := byte('2')
	if last == '2' {
		repl = '3'
	}
	return code[:len(code)-1] + string(repl)
}
