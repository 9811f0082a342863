package gateway_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/services/internal/gateway"
)

func TestSubmitRateLimitSparesStreams(t *testing.T) {
	b := setup(t, withGateway(func(c *gateway.Config) {
		c.SubmitRate = gateway.Rate{N: 1, Per: time.Minute}
		c.SubmitBurst = 3
	}))
	alice, bob := b.token(t, "alice"), b.token(t, "bob")
	submit := `{"type":"noop","input":{}}`
	var ids []string
	for i := 0; i < 3; i++ {
		status, hdr, body := request(t, "POST", b.url+"/v1/jobs", alice, "application/json", submit)
		if status != 202 {
			t.Fatalf("submit %d: %d %s", i, status, body)
		}
		ids = append(ids, hdr.Get("Location")[len("/v1/jobs/"):])
	}
	// Past the burst, every submit route answers 429 with Retry-After.
	for _, r := range []struct{ path, body string }{
		{"/v1/jobs", submit},
		{"/library/sync", `{"name":"x","format":"csv","content":"artist,title\nA,B"}`},
		{"/v1/jobs/" + ids[0] + "/retry", ""},
	} {
		status, hdr, body := request(t, "POST", b.url+r.path, alice, "application/json", r.body)
		retry, _ := strconv.Atoi(hdr.Get("Retry-After"))
		if status != 429 || errorCode(body) != api.CodeRateLimited || retry < 1 || retry > 60 {
			t.Errorf("%s past the limit: %d %s Retry-After %q", r.path, status, body, hdr.Get("Retry-After"))
		}
	}
	// Another user is not affected.
	if status, _, body := request(t, "POST", b.url+"/v1/jobs", bob, "application/json", submit); status != 202 {
		t.Errorf("bob: %d %s", status, body)
	}
	// Alice, at her limit, still reads and opens streams, and gets stream tokens.
	if status, _, body := request(t, "GET", b.url+"/v1/jobs", alice, "", ""); status != 200 {
		t.Errorf("list at the limit: %d %s", status, body)
	}
	stream, _ := issuedStreamToken(t, b, alice, "")
	for _, u := range []string{
		"/v1/events?access_token=" + alice,
		"/v1/events?access_token=" + stream,
		"/v1/jobs/" + ids[1] + "/events?access_token=" + alice,
		"/library/sync/" + ids[1] + "/progress?access_token=" + alice,
	} {
		if status, _, body := streamStatus(t, b.url+u); status != 200 && status != 204 {
			t.Errorf("stream %s at the submit limit: %d %s", u, status, body)
		}
	}
}
