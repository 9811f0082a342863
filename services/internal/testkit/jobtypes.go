package testkit

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/streams/streamstest"
)

// WaitJobType waits up to timeout until GET /v1/job-types lists jobType with Online == online.
func WaitJobType(t testing.TB, c *api.Client, jobType string, online bool, timeout time.Duration) {
	t.Helper()
	streamstest.WaitFor(t, timeout, func() error {
		list, err := c.JobTypes(context.Background())
		if err != nil {
			return err
		}
		for _, jt := range list.JobTypes {
			if jt.Name == jobType && jt.Online == online {
				return nil
			}
		}
		return fmt.Errorf("%s not listed with online=%v: %+v", jobType, online, list.JobTypes)
	})
}
