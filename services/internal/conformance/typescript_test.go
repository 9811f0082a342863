package conformance_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// requireNodeEnv makes a missing node or an unbuilt examples/count-ts a failure instead of a skip (CI
// sets it after `npm ci && npm run build`).
const requireNodeEnv = "JOBWIRE_REQUIRE_NODE"

// TestTypeScriptWorkerConformance runs the scenarios against examples/count-ts, the demo.count worker
// on @jobwire/worker, as `node examples/count-ts/dist/main.js`.
func TestTypeScriptWorkerConformance(t *testing.T) {
	runScenarios(t, typeScriptWorker(t))
}

// typeScriptWorker is the command of the built examples/count-ts, or skips the test (fails it when
// JOBWIRE_REQUIRE_NODE=1) if node or the build is missing.
func typeScriptWorker(t *testing.T) []string {
	_, self, _, _ := runtime.Caller(0)
	main := filepath.Join(filepath.Dir(self), "..", "..", "..", "examples", "count-ts", "dist", "main.js")
	missing := func(format string, args ...any) {
		if os.Getenv(requireNodeEnv) == "1" {
			t.Fatalf(format+" (%s=1)", append(args, requireNodeEnv)...)
		}
		t.Skipf(format+"; set %s=1 to make this a failure", append(args, requireNodeEnv)...)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node not found: the TypeScript worker cannot run")
	}
	if _, err := os.Stat(main); err != nil {
		missing("%s not built: run `npm ci && npm run build` at the repository root", main)
	}
	return []string{node, main}
}
