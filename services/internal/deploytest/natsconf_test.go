package deploytest

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jobwire/jobwire/services/internal/testkit"
)

// natsUser is a user of deployments/nats/accounts.conf with its (placeholder) password.
type natsUser struct {
	Name, Password string
}

var userRE = regexp.MustCompile(`\{\s*user:\s*"([^"]+)",\s*password:\s*"([^"]+)"`)

// confUsers returns the users of accounts.conf by name, with the passwords written there.
func confUsers(t *testing.T) map[string]natsUser {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(deployDir, "nats", "accounts.conf"))
	if err != nil {
		t.Fatal(err)
	}
	users := map[string]natsUser{}
	for _, m := range userRE.FindAllStringSubmatch(string(data), -1) {
		users[m[1]] = natsUser{Name: m[1], Password: m[2]}
	}
	for _, name := range []string{"admin", "gateway", "worker", "demo-worker", "projector", "mirror", "sys"} {
		if _, ok := users[name]; !ok {
			t.Fatalf("accounts.conf has no user %q (found %v)", name, users)
		}
	}
	return users
}

// copyNATSConfs copies deployments/nats into a temp dir, keeping its layout so that the includes
// (accounts.conf, ../accounts.conf) resolve the same way. When strict is set, the "self-ensure" blocks
// are removed from accounts.conf: the permissions the services need once they stop creating the topology.
func copyNATSConfs(t *testing.T, strict bool) string {
	t.Helper()
	dst := t.TempDir()
	src := filepath.Join(deployDir, "nats")
	err := filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		if !strings.HasSuffix(path, ".conf") {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if strict && rel == "accounts.conf" {
			data = []byte(stripSelfEnsure(string(data)))
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o644)
	})
	if err != nil {
		t.Fatalf("copy nats confs: %v", err)
	}
	return dst
}

// stripSelfEnsure removes the lines from "# >>> self-ensure" to "# <<< self-ensure" (inclusive).
func stripSelfEnsure(conf string) string {
	var out []string
	skip := false
	for _, line := range strings.Split(conf, "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(trimmed, "# >>> self-ensure"):
			skip = true
			continue
		case strings.HasPrefix(trimmed, "# <<< self-ensure"):
			skip = false
			continue
		}
		if !skip {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

var (
	portLineRE  = regexp.MustCompile(`^(\s*(?:port|http_port)\s*:\s*)(\d+)(.*)$`)
	hostPortRE  = regexp.MustCompile(`127\.0\.0\.1:(\d+)`)
	storeDirRE  = regexp.MustCompile(`^(\s*store_dir\s*:\s*)"[^"]*"(.*)$`)
	serverNameR = regexp.MustCompile(`(?m)^\s*server_name\s*:\s*"([^"]+)"`)
)

// rewriteConf returns conf with every port found in ports replaced by its value (client, monitoring,
// cluster listen and route ports) and store_dir set to storeDir. Everything else stays as written. A port
// that is not in ports fails the test: the test must know every port a config uses.
func rewriteConf(t *testing.T, conf string, ports map[int]int, storeDir string) string {
	t.Helper()
	mapPort := func(s string) string {
		n, _ := strconv.Atoi(s)
		to, ok := ports[n]
		if !ok {
			t.Fatalf("config uses port %d the test does not know", n)
		}
		return strconv.Itoa(to)
	}
	lines := strings.Split(conf, "\n")
	for i, line := range lines {
		if m := portLineRE.FindStringSubmatch(line); m != nil {
			lines[i] = m[1] + mapPort(m[2]) + m[3]
			continue
		}
		if m := storeDirRE.FindStringSubmatch(line); m != nil {
			lines[i] = m[1] + strconv.Quote(storeDir) + m[2]
			continue
		}
		lines[i] = hostPortRE.ReplaceAllStringFunc(line, func(hp string) string {
			return "127.0.0.1:" + mapPort(strings.TrimPrefix(hp, "127.0.0.1:"))
		})
	}
	return strings.Join(lines, "\n")
}

// natsNode is one nats-server process running a (rewritten) config of deployments/nats.
type natsNode struct {
	name       string
	conf       string // path of the rewritten config
	clientPort int
	httpPort   int
	proc       *testkit.Proc
}

func (n *natsNode) url() string { return "nats://127.0.0.1:" + strconv.Itoa(n.clientPort) }

func (n *natsNode) monitor() string { return "http://127.0.0.1:" + strconv.Itoa(n.httpPort) }

// prepareNode rewrites the config at rel (inside the copied dir) with fresh ports, checks it with
// `nats-server -t` and returns the node, not started.
func prepareNode(t *testing.T, dir, rel string, ports map[int]int) *natsNode {
	t.Helper()
	path := filepath.Join(dir, rel)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	name := "nats"
	if m := serverNameR.FindStringSubmatch(string(data)); m != nil {
		name = m[1]
	}
	conf := rewriteConf(t, string(data), ports, filepath.Join(t.TempDir(), "jetstream"))
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(natsBin, "-t", "-c", path).CombinedOutput(); err != nil {
		t.Fatalf("nats-server -t %s: %v\n%s", rel, err, out)
	}
	n := &natsNode{name: name, conf: path}
	for _, line := range strings.Split(conf, "\n") {
		if m := portLineRE.FindStringSubmatch(line); m != nil {
			p, _ := strconv.Atoi(m[2])
			if strings.Contains(m[1], "http_port") {
				n.httpPort = p
			} else {
				n.clientPort = p
			}
		}
	}
	if n.clientPort == 0 || n.httpPort == 0 {
		t.Fatalf("%s: no port or http_port", rel)
	}
	return n
}

// start runs the node and, when wait is set, waits until its /healthz answers 200.
func (n *natsNode) start(t *testing.T, wait bool) {
	t.Helper()
	if n.proc == nil {
		n.proc = testkit.StartProc(t, "nats-server "+n.name, natsBin, nil, "-c", n.conf)
	} else if err := n.proc.Restart(); err != nil {
		t.Fatal(err)
	}
	if wait {
		n.waitHealthy(t, 60*time.Second)
	}
}

func (n *natsNode) waitHealthy(t *testing.T, timeout time.Duration) {
	t.Helper()
	waitHTTP200(t, n.proc, n.monitor()+"/healthz", timeout)
}

// violations returns the permission violations the server logged.
func (n *natsNode) violations() []string {
	var out []string
	for _, line := range strings.Split(n.proc.Out.String(), "\n") {
		if strings.Contains(line, "Violation") {
			out = append(out, line)
		}
	}
	return out
}

// freePorts maps each of the given ports to a free loopback port.
func freePorts(t *testing.T, ports ...int) map[int]int {
	t.Helper()
	out := map[int]int{}
	seen := map[int]bool{}
	for _, p := range ports {
		for {
			f := testkit.FreePort(t)
			if !seen[f] {
				seen[f] = true
				out[p] = f
				break
			}
		}
	}
	return out
}

// joinURLs is the NATS_URL of several nodes.
func joinURLs(nodes ...*natsNode) string {
	urls := make([]string, len(nodes))
	for i, n := range nodes {
		urls[i] = n.url()
	}
	return strings.Join(urls, ",")
}

// mustNoViolations fails the test when any node logged a permission violation.
func mustNoViolations(t *testing.T, nodes ...*natsNode) {
	t.Helper()
	for _, n := range nodes {
		if v := n.violations(); len(v) > 0 {
			t.Errorf("%s logged %d permission violations while the services ran, e.g.:\n%s", n.name, len(v),
				strings.Join(v[:min(len(v), 20)], "\n"))
		}
	}
}
