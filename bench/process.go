package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mallhive/mallhive/internal/app"
	"github.com/mallhive/mallhive/internal/platform/config"
	"github.com/mallhive/mallhive/internal/platform/telemetry"
)

// inProcess starts a MallHive process inside the benchmark with the given
// flags; the returned stop waits for it to drain. It logs and traces as
// `mallhive serve` does (JSON access log at info, here thrown away; spans
// exported only when OTEL_EXPORTER_OTLP_ENDPOINT is set), so measurements
// pay for the whole edge.
func inProcess(ctx context.Context, args ...string) (p *app.Process, stop func(), err error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	var cfg app.Config
	cfg.RegisterFlags(fs)
	if err := config.Parse(fs, append([]string{"--http-addr=127.0.0.1:0", "--seed=false", "--gateway.rate-limit=0"}, args...), func(string) string { return "" }); err != nil {
		return nil, nil, err
	}
	log := telemetry.NewLogger(io.Discard, slog.LevelInfo)
	shutdownTracing, err := telemetry.SetupTracing(ctx, "mallhive", app.Version)
	if err != nil {
		return nil, nil, err
	}
	p, err = app.Start(ctx, &cfg, log, func(string) string { return "" })
	if err != nil {
		_ = shutdownTracing(ctx)
		return nil, nil, err
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = p.Serve(sctx, func(string) string { return "" }, io.Discard); close(done) }()
	return p, func() { cancel(); <-done; _ = shutdownTracing(context.WithoutCancel(ctx)) }, nil
}

// load runs fn from c goroutines for d and returns completed calls per
// second and every call's latency.
func load(ctx context.Context, c int, d time.Duration, fn func() error) (perSec float64, lat []time.Duration, err error) {
	var n atomic.Int64
	var firstErr atomic.Value
	var mu sync.Mutex
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	start := time.Now()
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for time.Now().Before(deadline) && ctx.Err() == nil {
				t0 := time.Now()
				if err := fn(); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				mine = append(mine, time.Since(t0))
				n.Add(1)
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if e, ok := firstErr.Load().(error); ok {
		return 0, nil, e
	}
	return float64(n.Load()) / time.Since(start).Seconds(), lat, nil
}

func newClient(c int) *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: c, MaxConnsPerHost: c}}
}

// call sends a JSON request and fails unless the status is want.
func call(cl *http.Client, method, url, token string, body any, want int, out any) error {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := cl.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %d %s", method, url, resp.StatusCode, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// buildBinary builds cmd/mallhive into dir.
func buildBinary(dir string) (string, error) {
	bin := filepath.Join(dir, "mallhive")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/mallhive")
	cmd.Stderr = os.Stderr
	return bin, cmd.Run()
}

// startBinary runs the binary, returns its base URL once it logs "serving"
// and the time from exec to /readyz answering 200.
func startBinary(bin string, args ...string) (cmd *exec.Cmd, base string, ready time.Duration, err error) {
	cmd = exec.Command(bin, append([]string{"serve", "--http-addr=127.0.0.1:0"}, args...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", 0, err
	}
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, "", 0, err
	}
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var line struct{ Msg, Addr string }
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "serving" {
			base = "http://" + line.Addr
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()
	if base == "" {
		_ = cmd.Process.Kill()
		return nil, "", 0, fmt.Errorf("the binary did not start")
	}
	for time.Since(t0) < 30*time.Second {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return cmd, base, time.Since(t0), nil
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	return nil, "", 0, fmt.Errorf("not ready within 30s")
}

// rssMiB reads a process's resident set size.
func rssMiB(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseFloat(f[1], 64)
			return kb / 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS")
}
