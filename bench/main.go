// Command bench measures MallHive against baselines taken in the same run
// on the same machine, and prints each result as a ratio. Targets are
// checked here, never in the test suite (shared machines are noisy).
//
//	go run ./bench auth          # logins vs raw argon2id; /users/me vs bare net/http; idle RSS; start to ready
//	go run ./bench -d 10s auth   # longer runs
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"sort"
	"text/tabwriter"
	"time"
)

type scenario struct {
	name string
	run  func(ctx context.Context, o options) ([]result, error)
}

type options struct {
	duration    time.Duration
	concurrency int
	out         io.Writer
}

// result is one measurement beside its baseline.
type result struct {
	name     string
	value    float64
	unit     string
	baseline float64 // 0: no baseline (absolute target)
	baseName string
	// target: ratio >= minRatio when baseline is set; else value <= maxValue
	minRatio float64
	maxValue float64
}

func (r result) ratio() float64 {
	if r.baseline == 0 {
		return 0
	}
	return r.value / r.baseline
}

func (r result) ok() bool {
	if r.baseline != 0 && r.minRatio == 0 {
		return true // reported, no target
	}
	if r.baseline != 0 {
		return r.ratio() >= r.minRatio
	}
	return r.value <= r.maxValue
}

var scenarios = []scenario{
	{"auth", runAuth},
	{"catalog", runCatalog},
	{"search", runSearch},
	{"cart", runCart},
	{"reservations", benchReservations}, // the second half of cart, alone
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	var o options
	fs.DurationVar(&o.duration, "d", 5*time.Second, "how long each throughput measurement runs")
	fs.IntVar(&o.concurrency, "c", 4*runtime.NumCPU(), "concurrent clients")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	o.out = out
	want := fs.Args()
	if len(want) == 0 {
		for _, s := range scenarios {
			want = append(want, s.name)
		}
	}
	var all []result
	for _, name := range want {
		var sc *scenario
		for i := range scenarios {
			if scenarios[i].name == name {
				sc = &scenarios[i]
			}
		}
		if sc == nil {
			return fmt.Errorf("unknown scenario %q", name)
		}
		fmt.Fprintf(out, "== %s (%s per measurement, %d clients, %d CPUs)\n", name, o.duration, o.concurrency, runtime.NumCPU())
		rs, err := sc.run(ctx, o)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		all = append(all, rs...)
	}
	report(out, all)
	for _, r := range all {
		if !r.ok() {
			return errors.New("a target was missed")
		}
	}
	return nil
}

func report(out io.Writer, rs []result) {
	tw := tabwriter.NewWriter(out, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "measurement\tvalue\tbaseline\tratio\ttarget\tok")
	for _, r := range rs {
		base, ratio, target := "-", "-", fmt.Sprintf("<= %s", fmtNum(r.maxValue, r.unit))
		if r.baseline != 0 {
			base = fmt.Sprintf("%s (%s)", fmtNum(r.baseline, r.unit), r.baseName)
			ratio = fmt.Sprintf("%.0f%%", 100*r.ratio())
			target = fmt.Sprintf(">= %.0f%%", 100*r.minRatio)
			if r.minRatio == 0 {
				target = "(report)"
			}
		}
		mark := "yes"
		if !r.ok() {
			mark = "NO"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.name, fmtNum(r.value, r.unit), base, ratio, target, mark)
	}
	tw.Flush()
}

func fmtNum(v float64, unit string) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f %s", v, unit)
	case v >= 10:
		return fmt.Sprintf("%.1f %s", v, unit)
	default:
		return fmt.Sprintf("%.2f %s", v, unit)
	}
}

// percentile returns the p-th percentile (0..100) of ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(float64(len(s)-1) * p / 100)
	return s[i]
}
