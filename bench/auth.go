package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mallhive/mallhive/internal/auth"
)

// runAuth: logins per second against the raw argon2id hash rate, an
// authenticated GET /api/v1/users/me against a bare net/http handler, and
// the embedded binary's idle memory and time from start to ready.
func runAuth(ctx context.Context, o options) ([]result, error) {
	var rs []result

	// Raw argon2id: the same parameters the service uses, one hash per CPU.
	hasher, err := auth.NewHasher(auth.HasherConfig{})
	if err != nil {
		return nil, err
	}
	var i atomic.Int64
	hashes, _, err := load(ctx, runtime.NumCPU(), o.duration, func() error {
		_, err := hasher.Hash(ctx, fmt.Sprintf("password-%d", i.Add(1)))
		return err
	})
	if err != nil {
		return nil, err
	}

	dir, err := os.MkdirTemp("", "mallhive-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	proc, stop, err := inProcess(ctx, "--services=auth,gateway", "--data-dir="+dir+"/inproc")
	if err != nil {
		return nil, err
	}
	defer stop()
	base := proc.URL
	cl := newClient(o.concurrency)
	cred := map[string]any{"email": "bench@example.com", "password": "a long bench passphrase", "name": "Bench"}
	if err := call(cl, "POST", base+"/api/v1/auth/register", "", cred, http.StatusCreated, nil); err != nil {
		return nil, err
	}
	login := map[string]any{"email": cred["email"], "password": cred["password"]}
	logins, _, err := load(ctx, o.concurrency, o.duration, func() error {
		return call(cl, "POST", base+"/api/v1/auth/login", "", login, http.StatusOK, nil)
	})
	if err != nil {
		return nil, err
	}
	rs = append(rs, result{name: "logins", value: logins, unit: "/s", baseline: hashes, baseName: "argon2id hashes", minRatio: 0.8})

	var pair struct {
		AccessToken string `json:"access_token"`
	}
	if err := call(cl, "POST", base+"/api/v1/auth/login", "", login, http.StatusOK, &pair); err != nil {
		return nil, err
	}
	var me []byte
	{
		resp, err := func() (*http.Response, error) {
			req, _ := http.NewRequest("GET", base+"/api/v1/users/me", nil)
			req.Header.Set("Authorization", "Bearer "+pair.AccessToken)
			return cl.Do(req)
		}()
		if err != nil {
			return nil, err
		}
		me = make([]byte, 0, 512)
		buf := make([]byte, 4096)
		for {
			n, err := resp.Body.Read(buf)
			me = append(me, buf[:n]...)
			if err != nil {
				break
			}
		}
		resp.Body.Close()
	}
	meRate, meLat, err := load(ctx, o.concurrency, o.duration, func() error {
		return call(cl, "GET", base+"/api/v1/users/me", pair.AccessToken, nil, http.StatusOK, nil)
	})
	if err != nil {
		return nil, err
	}
	bare := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(me)
	}))
	defer bare.Close()
	bareRate, _, err := load(ctx, o.concurrency, o.duration, func() error {
		return call(cl, "GET", bare.URL, pair.AccessToken, nil, http.StatusOK, nil)
	})
	if err != nil {
		return nil, err
	}
	rs = append(rs, result{name: "GET /users/me", value: meRate, unit: "req/s", baseline: bareRate, baseName: "bare net/http"})
	fmt.Fprintf(o.out, "GET /users/me p50 %s p99 %s\n", percentile(meLat, 50), percentile(meLat, 99))

	// The real binary: start to ready (fresh and existing data dir), idle RSS.
	bin, err := buildBinary(dir)
	if err != nil {
		return nil, err
	}
	data := dir + "/binary-data"
	cmd, _, first, err := startBinary(bin, "--data-dir="+data, "--seed=false")
	if err != nil {
		return nil, err
	}
	time.Sleep(3 * time.Second)
	rss, err := rssMiB(cmd.Process.Pid)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_ = cmd.Wait()
	if err != nil {
		return nil, err
	}
	cmd, _, again, err := startBinary(bin, "--data-dir="+data, "--seed=false")
	if err != nil {
		return nil, err
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_ = cmd.Wait()
	rs = append(rs,
		result{name: "idle RSS (embedded, all services)", value: rss, unit: "MiB", maxValue: 100},
		result{name: "start to ready, fresh data dir", value: first.Seconds(), unit: "s", maxValue: 2},
		result{name: "start to ready, existing data dir", value: again.Seconds(), unit: "s", maxValue: 2},
	)
	return rs, nil
}
