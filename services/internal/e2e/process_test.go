package e2e_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/jobwire/jobwire/services/internal/testkit"
	"github.com/jobwire/jobwire/streams/streamstest"
)

// binary is the jobwire binary built once for the process tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "jobwire-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "jobwire")
	build := exec.Command("go", "build", "-o", binary, "github.com/jobwire/jobwire/services/cmd/jobwire")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build jobwire:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// startProc runs `jobwire args...` with env added to a minimal environment (testkit.StartProc).
func startProc(t *testing.T, name string, env map[string]string, args ...string) *testkit.Proc {
	t.Helper()
	list := []string{"JOBWIRE_LOG_FORMAT=text", "JOBWIRE_METRICS_ADDR=127.0.0.1:0"}
	for k, v := range env {
		list = append(list, k+"="+v)
	}
	return testkit.StartProc(t, name, binary, list, args...)
}

// waitReady waits until GET url/readyz answers 200.
func waitReady(t *testing.T, base string) {
	t.Helper()
	streamstest.WaitFor(t, 60*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", base+"/readyz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("readyz %d", resp.StatusCode)
		}
		return nil
	})
}

// doRequest sends an authenticated request without a body.
func doRequest(method, url, token string) (int, http.Header, []byte) {
	req, _ := http.NewRequest(method, url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, []byte(err.Error())
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, data
}
