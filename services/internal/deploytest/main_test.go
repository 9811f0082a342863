package deploytest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Paths set up by TestMain.
var (
	// deployDir is the repository's deployments/ directory, the subject of these tests.
	deployDir string
	// jobwireBin is the jobwire binary, built like deployments/docker/Dockerfile builds it.
	jobwireBin string
	// natsBin is nats-server, built from the module jobwire already depends on.
	natsBin string
	// countBin is examples/count, a worker built on the public SDK outside jobwire's own module.
	countBin string
)

// buildFlags are the flags the Dockerfile builds jobwire with (dockerfile_test.go checks that it does).
var buildFlags = []string{"-trimpath", "-ldflags", "-s -w"}

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	var err error
	if deployDir, err = filepath.Abs(filepath.Join("..", "..", "..", "deployments")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	dir, err := os.MkdirTemp("", "jobwire-deploytest")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	jobwireBin = filepath.Join(dir, "jobwire")
	natsBin = filepath.Join(dir, "nats-server")
	args := append(append([]string{"build"}, buildFlags...), "-o", jobwireBin, "github.com/jobwire/jobwire/services/cmd/jobwire")
	if err := goBuild(args, "CGO_ENABLED=0"); err != nil {
		fmt.Fprintln(os.Stderr, "build jobwire:", err)
		return 1
	}
	if err := goBuild([]string{"build", "-o", natsBin, "github.com/nats-io/nats-server/v2"}); err != nil {
		fmt.Fprintln(os.Stderr, "build nats-server:", err)
		return 1
	}
	countBin = filepath.Join(dir, "count")
	build := exec.Command("go", "build", "-o", countBin, ".")
	build.Dir = filepath.Join(deployDir, "..", "examples", "count")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build examples/count:", err)
		return 1
	}
	return m.Run()
}

func goBuild(args []string, env ...string) error {
	cmd := exec.Command("go", args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	return cmd.Run()
}
