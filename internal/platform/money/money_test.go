package money

import "testing"

func TestValidate(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		m    Money
		ok   bool
	}{
		{"euro", Money{8900, "EUR"}, true},
		{"zero", Money{0, "JPY"}, true},
		{"negative", Money{-1, "EUR"}, false},
		{"unknown currency", Money{100, "XYZ"}, false},
		{"lowercase code", Money{100, "eur"}, false},
		{"empty currency", Money{100, ""}, false},
		{"too large", Money{MaxAmount + 1, "USD"}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := c.m.Validate(); (err == nil) != c.ok {
				t.Fatalf("Validate(%v) = %v, want ok=%v", c.m, err, c.ok)
			}
		})
	}
}

func TestString(t *testing.T) {
	t.Parallel()
	for m, want := range map[Money]string{
		{8900, "EUR"}: "89.00 EUR", {5, "EUR"}: "0.05 EUR", {1500, "JPY"}: "1500 JPY", {1234, "KWD"}: "1.234 KWD", {-250, "USD"}: "-2.50 USD",
	} {
		if got := m.String(); got != want {
			t.Errorf("%v.String() = %q, want %q", m, got, want)
		}
	}
}

func TestAddRefusesMixedCurrencies(t *testing.T) {
	t.Parallel()
	if _, err := (Money{1, "EUR"}).Add(Money{1, "USD"}); err == nil {
		t.Fatal("want error")
	}
	if s, err := (Money{1, "EUR"}).Add(Money{2, "EUR"}); err != nil || s.Amount != 3 {
		t.Fatalf("got %v %v", s, err)
	}
}
