// Package config loads a flag set from the command line and MALLHIVE_*
// environment variables: every flag "a.b-c" may also be given as
// MALLHIVE_A_B_C. The command line wins over the environment, which wins
// over the flag's default. This is the only place that reads the environment
// for configuration.
package config

import (
	"flag"
	"fmt"
	"strings"
)

// EnvName is the environment variable for a flag name.
func EnvName(flagName string) string {
	return "MALLHIVE_" + strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(flagName))
}

// Parse parses args into fs, then fills every flag not given on the command
// line from its environment variable, looked up with getenv.
func Parse(fs *flag.FlagSet, args []string, getenv func(string) string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] || err != nil {
			return
		}
		if v := getenv(EnvName(f.Name)); v != "" {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s: %w", EnvName(f.Name), e)
			}
		}
	})
	return err
}

// Masked renders a secret for logs: set or not, never its value.
func Masked(s string) string {
	if s == "" {
		return ""
	}
	return "xxxxx"
}
