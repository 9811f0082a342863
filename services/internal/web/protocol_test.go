package web

import (
	"regexp"
	"slices"
	"testing"

	"github.com/jobwire/jobwire/api"
)

// The page reads the same stream protocol the gateway writes (api/stream.go): it listens to every event
// the gateway sends, to nothing else, and resumes with the same query parameter.
func TestPageFollowsTheStreamProtocol(t *testing.T) {
	script, err := static.ReadFile("static/app.js")
	if err != nil {
		t.Fatal(err)
	}
	var heard []string
	for _, m := range regexp.MustCompile(`es\.addEventListener\('([^']+)'`).FindAllSubmatch(script, -1) {
		heard = append(heard, string(m[1]))
	}
	want := slices.Clone(api.StreamEvents)
	slices.Sort(want)
	slices.Sort(heard)
	if !slices.Equal(heard, want) {
		t.Errorf("the page listens to %v; the gateway sends %v", heard, want)
	}
	if !regexp.MustCompile(`/v1/events\?` + api.QueryLastEventID + `=`).Match(script) {
		t.Errorf("the page does not resume with ?%s=", api.QueryLastEventID)
	}
}
