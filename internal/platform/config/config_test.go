package config

import (
	"flag"
	"testing"
)

func TestParsePrecedence(t *testing.T) {
	t.Parallel()
	env := map[string]string{"MALLHIVE_HTTP_ADDR": ":9000", "MALLHIVE_AUTH_ACCESS_TTL": "7", "MALLHIVE_DATA_DIR": "/env"}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	addr := fs.String("http-addr", ":8080", "")
	ttl := fs.Int("auth.access-ttl", 10, "")
	dir := fs.String("data-dir", "./d", "")
	other := fs.String("other", "default", "")
	if err := Parse(fs, []string{"--data-dir=/flag"}, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if *addr != ":9000" || *ttl != 7 || *dir != "/flag" || *other != "default" {
		t.Fatalf("got addr=%s ttl=%d dir=%s other=%s", *addr, *ttl, *dir, *other)
	}
}

func TestParseReportsBadEnvValue(t *testing.T) {
	t.Parallel()
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.Int("n", 1, "")
	err := Parse(fs, nil, func(k string) string { return map[string]string{"MALLHIVE_N": "x"}[k] })
	if err == nil {
		t.Fatal("want error for a non-integer MALLHIVE_N")
	}
}
