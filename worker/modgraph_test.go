package worker_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A team adds the SDK to its own go.mod: the modules that come with it must stay few and small. The
// check runs `go list -m all` in examples/count, a module outside jobwire's own that imports the SDK
// the way a user's does (GOWORK=off, so only its go.mod and replace lines count).
func TestModuleGraphStaysSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("lists modules with the go command")
	}
	dir, err := filepath.Abs(filepath.Join("..", "examples", "count"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "list", "-m", "all")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list -m all: %v\n%s", err, out)
	}
	heavy := []string{
		"github.com/gofiber/", "github.com/valyala/fasthttp", "github.com/redis/", "github.com/chromedp/",
		"github.com/spf13/cobra", "github.com/spf13/pflag", "github.com/jobwire/jobwire/services",
		"google.golang.org/grpc",
		// Traces: the OpenTelemetry API only (otel, trace, metric, log, auto/sdk): the program that uses
		// the SDK chooses its exporter, so none of them, nor the OpenTelemetry SDK, is forced on it.
		"go.opentelemetry.io/otel/sdk", "go.opentelemetry.io/otel/exporters", "go.opentelemetry.io/proto",
	}
	modules := strings.Split(strings.TrimSpace(string(out)), "\n")
	for _, m := range modules {
		for _, h := range heavy {
			if strings.HasPrefix(m, h) {
				t.Errorf("a module importing the worker SDK needs %s", m)
			}
		}
	}
	for _, want := range []string{"github.com/jobwire/jobwire/worker", "github.com/nats-io/nats.go"} {
		found := false
		for _, m := range modules {
			found = found || strings.HasPrefix(m, want+" ")
		}
		if !found {
			t.Errorf("%s is not in the graph:\n%s", want, out)
		}
	}
	t.Logf("%d modules in the graph of a module that imports the worker SDK", len(modules))
}
