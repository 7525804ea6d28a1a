package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	"github.com/pquerna/otp/totp"
)

// TOTP parameters: RFC 6238 defaults, which every authenticator app supports.
const (
	TOTPPeriod = 30 * time.Second
	TOTPDigits = 6
	// TOTPSkew is how many steps before and after the current one are
	// accepted, for clock drift and slow typing.
	TOTPSkew = 1
)

// NewTOTPSecret makes a random 160-bit TOTP secret (base32, no padding) and
// the otpauth:// URL that authenticator apps scan as a QR code.
func NewTOTPSecret(issuer, account string) (secret, otpauthURL string, err error) {
	key, err := totp.Generate(totp.GenerateOpts{
		Issuer:      issuer,
		AccountName: account,
		Period:      uint(TOTPPeriod / time.Second),
		Digits:      otp.DigitsSix,
		Algorithm:   otp.AlgorithmSHA1,
		SecretSize:  20,
	})
	if err != nil {
		return "", "", fmt.Errorf("new totp secret: %w", err)
	}
	return key.Secret(), key.URL(), nil
}

// TOTPStep is the RFC 6238 time step (counter) that contains t.
func TOTPStep(t time.Time) int64 { return t.Unix() / int64(TOTPPeriod/time.Second) }

// MatchTOTP checks code against secret at now, allowing TOTPSkew steps either
// way, and returns the time step it matched. A code is single use: the caller
// stores the step of the last accepted code and refuses a match whose step is
// not greater, ideally in one conditional update
// (UPDATE ... SET totp_last_step = $step WHERE id = $id AND totp_last_step < $step),
// so a code seen by an attacker cannot be replayed in its 90-second window.
// Spaces and dashes in code are ignored.
func MatchTOTP(secret, code string, now time.Time) (step int64, ok bool) {
	code = strings.NewReplacer(" ", "", "-", "").Replace(code)
	if len(code) != TOTPDigits || strings.TrimLeft(code, "0123456789") != "" || secret == "" {
		return 0, false
	}
	current := TOTPStep(now)
	matched := int64(-1)
	// Every candidate step is computed and compared, so the time taken does
	// not tell which one matched.
	for s := current - TOTPSkew; s <= current+TOTPSkew; s++ {
		if s < 0 {
			continue
		}
		want, err := hotp.GenerateCodeCustom(secret, uint64(s), hotp.ValidateOpts{Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
		if err != nil {
			return 0, false
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 && matched < 0 {
			matched = s
		}
	}
	if matched < 0 {
		return 0, false
	}
	return matched, true
}

// VerifyTOTP reports whether code is valid for secret at now (±TOTPSkew
// steps). It does not stop replays; use MatchTOTP for that.
func VerifyTOTP(secret, code string, now time.Time) bool {
	_, ok := MatchTOTP(secret, code, now)
	return ok
}

// Recovery codes are 10 characters of Crockford's base32 (no i, l, o, u),
// shown as xxxxx-xxxxx: 50 bits each. A recovery code stands in for the
// second factor only; the password is still required.
const (
	DefaultRecoveryCodes = 10
	recoveryCodeLen      = 10
	recoveryAlphabet     = "0123456789abcdefghjkmnpqrstvwxyz"
	recoveryHashPrefix   = "mallhive recovery code\x00"
)

// NewRecoveryCodes returns n (DefaultRecoveryCodes when n <= 0) recovery
// codes to show the user once, and their hashes to store.
func NewRecoveryCodes(n int) (plain []string, hashed []string) {
	if n <= 0 {
		n = DefaultRecoveryCodes
	}
	plain = make([]string, n)
	hashed = make([]string, n)
	buf := make([]byte, recoveryCodeLen)
	for i := range n {
		_, _ = rand.Read(buf) // crypto/rand.Read never fails
		var b strings.Builder
		for j, c := range buf {
			if j == recoveryCodeLen/2 {
				b.WriteByte('-')
			}
			b.WriteByte(recoveryAlphabet[c&31]) // 256 is a multiple of 32: uniform
		}
		plain[i] = b.String()
		hashed[i] = hashRecoveryCode(normaliseRecoveryCode(plain[i]))
	}
	return plain, hashed
}

// normaliseRecoveryCode lower-cases code, drops dashes and spaces, and reads
// o as 0 and i, l as 1 (Crockford); it returns "" when what is left is not a
// code.
func normaliseRecoveryCode(code string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(code) {
		switch r {
		case '-', ' ', '\t':
			continue
		case 'o':
			r = '0'
		case 'i', 'l':
			r = '1'
		}
		if !strings.ContainsRune(recoveryAlphabet, r) {
			return ""
		}
		b.WriteRune(r)
		if b.Len() > recoveryCodeLen {
			return ""
		}
	}
	if b.Len() != recoveryCodeLen {
		return ""
	}
	return b.String()
}

// hashRecoveryCode is a plain SHA-256, which the codes' entropy allows; the
// prefix keeps these hashes apart from every other SHA-256 in the database.
func hashRecoveryCode(normalised string) string {
	sum := sha256.Sum256([]byte(recoveryHashPrefix + normalised))
	return hex.EncodeToString(sum[:])
}

// MatchRecoveryCode reports which of the stored hashes code matches. Case,
// dashes and spaces do not matter. Every hash is compared, so the time taken
// does not tell which matched; the caller deletes the used one.
func MatchRecoveryCode(code string, hashed []string) (index int, ok bool) {
	norm := normaliseRecoveryCode(code)
	if norm == "" {
		return -1, false
	}
	want := []byte(hashRecoveryCode(norm))
	index = -1
	for i, h := range hashed {
		if subtle.ConstantTimeCompare([]byte(h), want) == 1 && index < 0 {
			index = i
		}
	}
	return index, index >= 0
}
