package deploytest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/jobwire/jobwire/services/internal/testkit"
	"github.com/jobwire/jobwire/streams/streamstest"
)

// httpGet returns the status and body of GET url (with a 5 s timeout).
func httpGet(url string) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

// waitHTTP200 waits until GET url answers 200 (a readiness probe), or the process p exits.
func waitHTTP200(t *testing.T, p *testkit.Proc, url string, timeout time.Duration) {
	t.Helper()
	streamstest.WaitFor(t, timeout, func() error {
		if p != nil && p.Exited() {
			return fmt.Errorf("GET %s: %s exited: %v", url, p.Name, p.Err())
		}
		code, body, err := httpGet(url)
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return fmt.Errorf("GET %s: status %d: %s", url, code, body)
		}
		return nil
	})
}
