package config_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jobwire/jobwire/services/internal/config"
)

func TestReadmeDocumentsEveryVariable(t *testing.T) {
	readme, err := os.ReadFile("../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	const begin, end = "<!-- env:begin -->\n", "<!-- env:end -->"
	text := string(readme)
	i, j := strings.Index(text, begin), strings.Index(text, end)
	if i < 0 || j < i {
		t.Fatal("README.md has no env table markers")
	}
	if got, want := text[i+len(begin):j], config.MarkdownTable(); got != want {
		t.Fatalf("README.md's configuration table is out of date: run `go run ./services/cmd/jobwire env --markdown` and paste it between the markers.\nwant:\n%s", want)
	}
}

func TestEnvDefaultsAndErrors(t *testing.T) {
	env := config.FromMap(map[string]string{"JOBWIRE_SSE_HEARTBEAT": "5s", "JOBWIRE_WORKER_CONCURRENCY": "many", "JOBWIRE_SSE_MAX_DURATION": "soon"})
	if got := env.Duration("JOBWIRE_SSE_HEARTBEAT"); got != 5*time.Second {
		t.Errorf("heartbeat %s", got)
	}
	if got := env.String("JOBWIRE_HTTP_ADDR"); got != ":8080" {
		t.Errorf("default addr %q", got)
	}
	env.Int("JOBWIRE_WORKER_CONCURRENCY")
	env.Duration("JOBWIRE_SSE_MAX_DURATION")
	err := env.Err()
	if err == nil || !strings.Contains(err.Error(), "JOBWIRE_WORKER_CONCURRENCY") || !strings.Contains(err.Error(), "JOBWIRE_SSE_MAX_DURATION") {
		t.Fatalf("want both errors reported, got %v", err)
	}
}
