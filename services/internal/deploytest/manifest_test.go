package deploytest

import (
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"gopkg.in/yaml.v3"
)

// What the manifests are held to.
const (
	// workerGraceMargin is how much longer than JOBWIRE_WORKER_SHUTDOWN_GRACE a worker is given to stop:
	// handing the unfinished jobs back and draining NATS happen after the grace.
	workerGraceMargin = 10 * time.Second
	// gatewayMinGrace: the gateway ends its streams, then gives requests up to 10 s, then drains NATS.
	gatewayMinGrace = 15 * time.Second
)

// serviceCommands are the jobwire subcommands that run as long-lived services.
var serviceCommands = []string{"gateway", "worker", "projector", "mirror"}

var (
	helpOnce sync.Map // subcommand -> error of `jobwire <sub> --help`
)

// checkSubcommand runs `jobwire <sub> --help` (once per subcommand) and fails when it does not exit 0.
func checkSubcommand(t *testing.T, sub string) {
	t.Helper()
	v, ok := helpOnce.Load(sub)
	if !ok {
		args := []string{"--help"}
		if !strings.HasPrefix(sub, "-") {
			args = []string{sub, "--help"}
		}
		out, err := exec.Command(jobwireBin, args...).CombinedOutput()
		if err == nil && !strings.HasPrefix(sub, "-") && !strings.Contains(string(out), "jobwire "+sub) {
			err = fmt.Errorf("help does not describe %q:\n%s", sub, out)
		}
		v, _ = helpOnce.LoadOrStore(sub, err)
	}
	if err, _ := v.(error); err != nil {
		t.Errorf("`jobwire %s --help`: %v", sub, err)
	}
}

// checkEnvNames fails for every variable jobwire does not read.
func checkEnvNames(t *testing.T, where string, env map[string]string) {
	t.Helper()
	for name := range env {
		if !hasVar(name) {
			t.Errorf("%s: environment variable %s is not one jobwire reads (config.Vars)", where, name)
		}
	}
}

// listenPort is the port a service command listens on for HTTP (the gateway's API, the others'
// health and metrics), from env or the documented default.
func listenPort(t *testing.T, command string, env map[string]string) int {
	t.Helper()
	name := "JOBWIRE_METRICS_ADDR"
	if command == "gateway" {
		name = "JOBWIRE_HTTP_ADDR"
	}
	_, port := listenAddr(t, name, env)
	return port
}

// listenAddr is the host and port of the address variable name, from env or the documented default.
func listenAddr(t *testing.T, name string, env map[string]string) (string, int) {
	t.Helper()
	addr, ok := env[name]
	if !ok {
		addr = varDefault(t, name)
	}
	host, port, err := net.SplitHostPort(addr)
	n, err2 := strconv.Atoi(port)
	if err != nil || err2 != nil {
		t.Fatalf("%s=%q is not host:port", name, addr)
	}
	return host, n
}

// checkMetricsPort checks that a service's /metrics listener is reachable from outside its container
// (the default is loopback) on a port it publishes, and returns that port.
func checkMetricsPort(t *testing.T, name string, env map[string]string, published []int) int {
	t.Helper()
	host, port := listenAddr(t, "JOBWIRE_METRICS_ADDR", env)
	if host != "" && host != "0.0.0.0" && host != "::" {
		t.Errorf("%s: JOBWIRE_METRICS_ADDR listens on %s, which no scraper outside the container reaches (set :%d)", name, host, port)
	}
	if !slices.Contains(published, port) {
		t.Errorf("%s: /metrics on %d, not among its ports %v", name, port, published)
	}
	return port
}

// minGrace is the least termination grace a service command needs.
func minGrace(t *testing.T, command string, env map[string]string) time.Duration {
	t.Helper()
	switch command {
	case "worker":
		s, ok := env["JOBWIRE_WORKER_SHUTDOWN_GRACE"]
		if !ok {
			s = varDefault(t, "JOBWIRE_WORKER_SHUTDOWN_GRACE")
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("JOBWIRE_WORKER_SHUTDOWN_GRACE=%q: %v", s, err)
		}
		return d + workerGraceMargin
	case "gateway":
		return gatewayMinGrace
	}
	return 10 * time.Second
}

// --- docker compose ---

var interpRE = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}`)

// interpolate resolves compose's ${VAR}, ${VAR:-default} and ${VAR:?error} as if the variables were
// unset, except those in set.
func interpolate(s string, set map[string]string) string {
	return interpRE.ReplaceAllStringFunc(s, func(m string) string {
		p := interpRE.FindStringSubmatch(m)
		if v, ok := set[p[1]]; ok {
			return v
		}
		if strings.HasSuffix(p[2], "-") {
			return p[3]
		}
		return ""
	})
}

type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Image       string            `yaml:"image"`
	Build       *composeBuild     `yaml:"build"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Expose      []string          `yaml:"expose"`
	Ports       []string          `yaml:"ports"`
	Volumes     []string          `yaml:"volumes"`
	WorkingDir  string            `yaml:"working_dir"`
	DependsOn   map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	Healthcheck *struct {
		Test []string `yaml:"test"`
	} `yaml:"healthcheck"`
	StopGracePeriod string   `yaml:"stop_grace_period"`
	Profiles        []string `yaml:"profiles"`
	Deploy          *struct {
		Replicas int `yaml:"replicas"`
	} `yaml:"deploy"`
}

type composeBuild struct {
	Context    string `yaml:"context"`
	Dockerfile string `yaml:"dockerfile"`
	Target     string `yaml:"target"`
}

func loadCompose(t *testing.T) (composeFile, string) {
	t.Helper()
	dir := filepath.Join(deployDir, "compose")
	data, err := os.ReadFile(filepath.Join(dir, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var f composeFile
	if err := yaml.Unmarshal(data, &f); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return f, dir
}

// TestCompose checks deployments/compose/docker-compose.yml against the binary, the NATS configs and
// nginx.conf.
func TestCompose(t *testing.T) {
	f, dir := loadCompose(t)
	users := confUsers(t)
	hostEnv := map[string]string{"JOBWIRE_JWT_SECRET": "set-by-the-operator-0123456789-0123456789"}

	natsPorts := map[string]int{} // nats service -> client port
	var gateways []string
	seen := map[string]int{}
	for name, svc := range f.Services {
		switch {
		case strings.HasPrefix(svc.Image, "nats:"):
			natsPorts[name] = checkComposeNATS(t, f, name, svc, dir)
		case svc.Build != nil || strings.HasPrefix(svc.Image, "jobwire"):
			if len(svc.Command) == 0 {
				t.Errorf("%s: no command", name)
				continue
			}
			checkSubcommand(t, svc.Command[0])
			if slices.Contains(serviceCommands, svc.Command[0]) {
				seen[svc.Command[0]] += max(1, replicas(svc))
				if svc.Command[0] == "gateway" {
					gateways = append(gateways, name)
				}
			}
		}
	}
	if len(natsPorts) != 3 {
		t.Errorf("compose runs %d NATS nodes, want 3", len(natsPorts))
	}
	want := map[string]int{"gateway": 2, "worker": 2, "projector": 1, "mirror": 1}
	for cmd, n := range want {
		if seen[cmd] != n {
			t.Errorf("compose runs %d %s processes, want %d", seen[cmd], cmd, n)
		}
	}

	for name, svc := range f.Services {
		if svc.Build == nil && !strings.HasPrefix(svc.Image, "jobwire") || len(svc.Command) == 0 {
			continue
		}
		env := map[string]string{}
		for k, v := range svc.Environment {
			env[k] = interpolate(v, hostEnv)
		}
		checkEnvNames(t, "compose service "+name, env)
		checkComposeBuild(t, name, svc, dir)
		cmd := svc.Command[0]
		if !slices.Contains(serviceCommands, cmd) {
			continue
		}
		// NATS: the service's own user with the password accounts.conf has, every node in NATS_URL.
		if u, ok := users[env["NATS_USER"]]; !ok || env["NATS_USER"] != serviceUsers[cmd] {
			t.Errorf("%s: NATS_USER=%q, want %q", name, env["NATS_USER"], serviceUsers[cmd])
		} else if env["NATS_PASSWORD"] != u.Password {
			t.Errorf("%s: NATS_PASSWORD defaults to %q but accounts.conf has %q", name, env["NATS_PASSWORD"], u.Password)
		}
		checkNATSURL(t, name, env["NATS_URL"], natsPorts)
		if env["JOBWIRE_REPLICAS"] != "3" {
			t.Errorf("%s: JOBWIRE_REPLICAS=%q on a 3-node cluster, want 3", name, env["JOBWIRE_REPLICAS"])
		}
		for n := range natsPorts {
			if svc.DependsOn[n].Condition != "service_healthy" {
				t.Errorf("%s: does not wait for %s to be healthy", name, n)
			}
		}
		// HTTP: listens where the healthcheck looks, and says so.
		port := listenPort(t, cmd, env)
		var exposed []int
		for _, e := range svc.Expose {
			n, _ := strconv.Atoi(e)
			exposed = append(exposed, n)
		}
		checkMetricsPort(t, name, env, exposed)
		if !slices.Contains(svc.Expose, strconv.Itoa(port)) {
			t.Errorf("%s: listens on %d but exposes %v", name, port, svc.Expose)
		}
		if svc.Healthcheck == nil || !strings.Contains(strings.Join(svc.Healthcheck.Test, " "), fmt.Sprintf("http://127.0.0.1:%d/readyz", port)) {
			t.Errorf("%s: healthcheck must GET http://127.0.0.1:%d/readyz, is %v", name, port, svc.Healthcheck)
		}
		grace, err := time.ParseDuration(svc.StopGracePeriod)
		if need := minGrace(t, cmd, env); err != nil || grace < need || (cmd == "worker" && grace <= need-workerGraceMargin) {
			t.Errorf("%s: stop_grace_period %q, want at least %s", name, svc.StopGracePeriod, need)
		}
		if cmd == "mirror" {
			host := strings.TrimPrefix(env["REDIS_URL"], "redis://")
			host, _, _ = strings.Cut(host, ":")
			if _, ok := f.Services[host]; !ok || svc.DependsOn[host].Condition != "service_healthy" {
				t.Errorf("mirror: REDIS_URL %q must name the compose redis service and wait for it", env["REDIS_URL"])
			}
		}
	}
	checkNginx(t, f, gateways, dir, hostEnv)
}

func replicas(svc composeService) int {
	if svc.Deploy == nil {
		return 1
	}
	return svc.Deploy.Replicas
}

// checkComposeNATS checks one NATS node: its config is one of the cluster configs, the flags that adapt
// it to containers parse, its routes name the other nodes, its healthcheck hits its monitoring port.
// It returns the client port.
func checkComposeNATS(t *testing.T, f composeFile, name string, svc composeService, dir string) int {
	t.Helper()
	flags := map[string]string{}
	for i := 0; i+1 < len(svc.Command); i++ {
		if strings.HasPrefix(svc.Command[i], "-") {
			flags[svc.Command[i]] = svc.Command[i+1]
		}
	}
	conf := flags["-c"]
	mount := ""
	for _, v := range svc.Volumes {
		if src, dst, ok := strings.Cut(strings.TrimSuffix(v, ":ro"), ":"); ok && strings.HasPrefix(conf, dst+"/") {
			mount = filepath.Join(dir, src, strings.TrimPrefix(conf, dst+"/"))
		}
	}
	if mount == "" || !strings.HasPrefix(mount, filepath.Join(deployDir, "nats", "cluster")) {
		t.Errorf("%s: config %q is not one of deployments/nats/cluster mounted into the container", name, conf)
		return 0
	}
	// nats-server checks the config with the same flags (hosts and the store are the container's).
	args := []string{"-t"}
	for i, a := range svc.Command {
		if i > 0 && svc.Command[i-1] == "-c" {
			a = mount
		}
		args = append(args, a)
	}
	if out, err := exec.Command(natsBin, args...).CombinedOutput(); err != nil {
		t.Errorf("%s: nats-server %v: %v\n%s", name, args, err, out)
	}
	// JetStream's store (the config's store_dir, from the working directory) is on a named volume.
	o, err := server.ProcessConfigFile(mount)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	store := o.StoreDir
	if !filepath.IsAbs(store) {
		if svc.WorkingDir == "" {
			t.Errorf("%s: store_dir %q is relative and the service sets no working_dir", name, store)
		}
		store = filepath.Join(svc.WorkingDir, store)
	}
	onVolume := false
	for _, v := range svc.Volumes {
		src, dst, _ := strings.Cut(v, ":")
		if _, named := f.Volumes[src]; named && strings.HasPrefix(store+"/", strings.TrimSuffix(dst, "/")+"/") {
			onVolume = true
		}
	}
	if !onVolume {
		t.Errorf("%s: JetStream stores in %s, which is on no named volume", name, store)
	}
	_, clusterPort, _ := strings.Cut(strings.TrimPrefix(flags["--cluster_listen"], "nats://"), ":")
	var routed []string
	for _, r := range strings.Split(flags["--routes"], ",") {
		host, port, _ := strings.Cut(strings.TrimPrefix(r, "nats-route://"), ":")
		if port != clusterPort {
			t.Errorf("%s: route %s does not use the cluster port %s", name, r, clusterPort)
		}
		if _, ok := f.Services[host]; !ok {
			t.Errorf("%s: route %s names no compose service", name, r)
		}
		routed = append(routed, host)
	}
	if len(routed) < 2 {
		t.Errorf("%s: routes %v, want the other two nodes", name, routed)
	}
	if svc.Healthcheck == nil || !strings.Contains(strings.Join(svc.Healthcheck.Test, " "), "127.0.0.1:"+flags["--http_port"]+"/healthz") {
		t.Errorf("%s: healthcheck must hit /healthz on the monitoring port %s", name, flags["--http_port"])
	}
	port, err := strconv.Atoi(flags["--port"])
	if err != nil {
		t.Errorf("%s: no --port", name)
	}
	return port
}

// checkNATSURL checks that a NATS_URL lists every compose NATS node on its client port.
func checkNATSURL(t *testing.T, name, url string, natsPorts map[string]int) {
	t.Helper()
	listed := map[string]bool{}
	for _, u := range strings.Split(url, ",") {
		host, port, _ := strings.Cut(strings.TrimPrefix(u, "nats://"), ":")
		if p, ok := natsPorts[host]; !ok || strconv.Itoa(p) != port {
			t.Errorf("%s: NATS_URL entry %s is not a NATS node's client port", name, u)
		}
		listed[host] = true
	}
	if len(listed) != len(natsPorts) {
		t.Errorf("%s: NATS_URL %s does not list all %d nodes", name, url, len(natsPorts))
	}
}

// checkComposeBuild checks that the image is built from the Dockerfile at a stage it has.
func checkComposeBuild(t *testing.T, name string, svc composeService, dir string) {
	t.Helper()
	if svc.Build == nil {
		return
	}
	ctx := filepath.Join(dir, svc.Build.Context)
	df := filepath.Join(ctx, svc.Build.Dockerfile)
	if filepath.Clean(df) != filepath.Join(deployDir, "docker", "Dockerfile") {
		t.Errorf("%s: builds %s, want deployments/docker/Dockerfile", name, df)
	}
	if _, err := os.Stat(filepath.Join(ctx, "go.work")); err != nil {
		t.Errorf("%s: build context %s is not the repository root", name, ctx)
	}
	if svc.Build.Target != "" && !slices.Contains(dockerStages(t), svc.Build.Target) {
		t.Errorf("%s: build target %q is no stage of the Dockerfile", name, svc.Build.Target)
	}
}

var (
	nginxUpstreamRE = regexp.MustCompile(`(?m)^\s*server\s+([\w.-]+):(\d+)\b`)
	nginxProxyRE    = regexp.MustCompile(`(?m)^\s*proxy_pass\s+http://([\w.-]+)\s*;`)
)

// checkNginx checks the proxy: it serves nginx.conf, which sends to every gateway on its port and never
// buffers (SSE).
func checkNginx(t *testing.T, f composeFile, gateways []string, dir string, hostEnv map[string]string) {
	t.Helper()
	var proxy *composeService
	for name, svc := range f.Services {
		if strings.HasPrefix(svc.Image, "nginx") {
			s := svc
			proxy = &s
			for _, g := range gateways {
				if s.DependsOn[g].Condition != "service_healthy" {
					t.Errorf("%s: does not wait for %s", name, g)
				}
			}
		}
	}
	if proxy == nil {
		t.Fatal("no nginx service")
	}
	mounted := false
	for _, v := range proxy.Volumes {
		src, dst, _ := strings.Cut(strings.TrimSuffix(v, ":ro"), ":")
		if filepath.Join(dir, src) == filepath.Join(dir, "nginx.conf") && dst == "/etc/nginx/nginx.conf" {
			mounted = true
		}
	}
	if !mounted {
		t.Error("nginx does not use deployments/compose/nginx.conf")
	}
	data, err := os.ReadFile(filepath.Join(dir, "nginx.conf"))
	if err != nil {
		t.Fatal(err)
	}
	conf := string(data)
	for _, directive := range []string{"proxy_buffering off;", "proxy_read_timeout 1h;", "proxy_http_version 1.1;", "proxy_cache off;"} {
		if !strings.Contains(conf, directive) {
			t.Errorf("nginx.conf lacks %q", directive)
		}
	}
	if m := nginxProxyRE.FindStringSubmatch(conf); m == nil || !strings.Contains(conf, "upstream "+m[1]) {
		t.Error("nginx.conf: proxy_pass does not go to an upstream block")
	}
	upstream := map[string]string{}
	for _, m := range nginxUpstreamRE.FindAllStringSubmatch(conf, -1) {
		upstream[m[1]] = m[2]
	}
	for _, g := range gateways {
		env := map[string]string{}
		for k, v := range f.Services[g].Environment {
			env[k] = interpolate(v, hostEnv)
		}
		if port := strconv.Itoa(listenPort(t, "gateway", env)); upstream[g] != port {
			t.Errorf("nginx.conf: upstream has %s:%s, the gateway listens on %s", g, upstream[g], port)
		}
	}
	if len(upstream) != len(gateways) {
		t.Errorf("nginx upstream %v, compose gateways %v", upstream, gateways)
	}
}

// --- Dockerfile ---

var fromRE = regexp.MustCompile(`(?i)^FROM\s+(\S+)(?:\s+AS\s+(\S+))?`)

type dockerStage struct {
	name, image string
	lines       []string // instructions, continuation lines joined
}

func parseDockerfile(t *testing.T) []dockerStage {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(deployDir, "docker", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var stages []dockerStage
	var cur strings.Builder
	flush := func() {
		line := strings.TrimSpace(cur.String())
		cur.Reset()
		if line == "" {
			return
		}
		if m := fromRE.FindStringSubmatch(line); m != nil {
			stages = append(stages, dockerStage{name: m[2], image: m[1]})
			return
		}
		if len(stages) > 0 {
			stages[len(stages)-1].lines = append(stages[len(stages)-1].lines, line)
		}
	}
	for _, line := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") {
			continue
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur.WriteString(strings.TrimSuffix(trimmed, "\\") + " ")
			continue
		}
		cur.WriteString(trimmed)
		flush()
	}
	flush()
	return stages
}

func dockerStages(t *testing.T) []string {
	var names []string
	for _, s := range parseDockerfile(t) {
		names = append(names, s.name)
	}
	return names
}

// TestDockerfile checks the image recipe: a Go builder that builds ./services/cmd/jobwire statically
// with the flags TestMain builds with (and the binary TestMain built is static), and a final
// distroless stage running as non-root with the service ports and /jobwire as entrypoint.
func TestDockerfile(t *testing.T) {
	stages := parseDockerfile(t)
	if len(stages) < 2 {
		t.Fatalf("want a multi-stage Dockerfile, got %d stages", len(stages))
	}
	build := stages[0]
	if !strings.HasPrefix(build.image, "golang:") {
		t.Errorf("first stage %s is not a golang builder", build.image)
	}
	goVersion := goWorkVersion(t)
	all := strings.Join(build.lines, "\n")
	if !strings.Contains(all, "ARG GO_VERSION="+goVersion) && !strings.HasPrefix(build.image, "golang:"+goVersion) {
		// The ARG sits before FROM; check the whole file for it.
		data, _ := os.ReadFile(filepath.Join(deployDir, "docker", "Dockerfile"))
		if !strings.Contains(string(data), "ARG GO_VERSION="+goVersion) {
			t.Errorf("builder is not golang:%s (go.work says go %s)", goVersion, goVersion)
		}
	}
	var buildLine string
	for _, l := range build.lines {
		if strings.HasPrefix(l, "RUN") && strings.Contains(l, "go build") {
			buildLine = l
		}
	}
	for _, want := range []string{"CGO_ENABLED=0", "./services/cmd/jobwire", "-trimpath", `-ldflags "-s -w"`} {
		if !strings.Contains(buildLine, want) {
			t.Errorf("builder's go build lacks %s: %q", want, buildLine)
		}
	}
	for _, f := range buildFlags {
		if !strings.Contains(buildLine, f) {
			t.Errorf("TestMain builds with %q, the Dockerfile does not", f)
		}
	}
	// Everything the builder copies exists at the repository root.
	root := filepath.Dir(deployDir)
	for _, l := range build.lines {
		fields := strings.Fields(l)
		if len(fields) < 3 || fields[0] != "COPY" || strings.HasPrefix(fields[1], "--") {
			continue
		}
		for _, src := range fields[1 : len(fields)-1] {
			if _, err := os.Stat(filepath.Join(root, src)); err != nil {
				t.Errorf("Dockerfile copies %s, which the repository does not have", src)
			}
		}
	}

	final := stages[len(stages)-1]
	if final.image != "gcr.io/distroless/static:nonroot" && final.image != "scratch" {
		t.Errorf("final stage is %s, want distroless/static:nonroot or scratch", final.image)
	}
	httpPort := strconv.Itoa(listenPort(t, "gateway", nil))
	metricsPort := strconv.Itoa(listenPort(t, "worker", nil))
	var user, expose, entry string
	for _, l := range final.lines {
		switch f := strings.Fields(l); f[0] {
		case "USER":
			user = f[1]
		case "EXPOSE":
			expose = strings.Join(f[1:], " ")
		case "ENTRYPOINT":
			entry = strings.TrimSpace(strings.TrimPrefix(l, "ENTRYPOINT"))
		}
	}
	if uid, _, _ := strings.Cut(user, ":"); uid == "" || uid == "0" || uid == "root" {
		t.Errorf("final stage runs as %q, want a non-root USER", user)
	}
	if expose != httpPort+" "+metricsPort {
		t.Errorf("EXPOSE %q, want %s %s (JOBWIRE_HTTP_ADDR, JOBWIRE_METRICS_ADDR defaults)", expose, httpPort, metricsPort)
	}
	if entry != `["/jobwire"]` {
		t.Errorf(`ENTRYPOINT %s, want ["/jobwire"]`, entry)
	}
	checkStatic(t, jobwireBin)
}

func goWorkVersion(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(filepath.Dir(deployDir), "go.work"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindStringSubmatch(string(data))
	if m == nil {
		t.Fatal("go.work has no go line")
	}
	return m[1]
}

// --- Kubernetes ---

type k8sObject struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Spec yaml.Node `yaml:"spec"`
}

type deploymentSpec struct {
	Replicas int `yaml:"replicas"`
	Selector struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	} `yaml:"selector"`
	Template struct {
		Metadata struct {
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"metadata"`
		Spec struct {
			TerminationGracePeriodSeconds *int `yaml:"terminationGracePeriodSeconds"`
			SecurityContext               struct {
				RunAsNonRoot bool `yaml:"runAsNonRoot"`
			} `yaml:"securityContext"`
			Containers []k8sContainer `yaml:"containers"`
		} `yaml:"spec"`
	} `yaml:"template"`
}

type k8sContainer struct {
	Name    string   `yaml:"name"`
	Image   string   `yaml:"image"`
	Command []string `yaml:"command"`
	Args    []string `yaml:"args"`
	Ports   []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	Env []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef *secretKeyRef `yaml:"secretKeyRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	EnvFrom []struct {
		ConfigMapRef *struct {
			Name string `yaml:"name"`
		} `yaml:"configMapRef"`
	} `yaml:"envFrom"`
	LivenessProbe  *k8sProbe `yaml:"livenessProbe"`
	ReadinessProbe *k8sProbe `yaml:"readinessProbe"`
	StartupProbe   *k8sProbe `yaml:"startupProbe"`
	Lifecycle      *struct {
		PreStop *struct {
			Sleep *struct {
				Seconds int `yaml:"seconds"`
			} `yaml:"sleep"`
		} `yaml:"preStop"`
	} `yaml:"lifecycle"`
	Resources struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	SecurityContext struct {
		ReadOnlyRootFilesystem   bool  `yaml:"readOnlyRootFilesystem"`
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
	} `yaml:"securityContext"`
}

type k8sProbe struct {
	HTTPGet *struct {
		Path string    `yaml:"path"`
		Port yaml.Node `yaml:"port"`
	} `yaml:"httpGet"`
}

type kustomization struct {
	Namespace          string   `yaml:"namespace"`
	Resources          []string `yaml:"resources"`
	ConfigMapGenerator []struct {
		Name     string   `yaml:"name"`
		Literals []string `yaml:"literals"`
	} `yaml:"configMapGenerator"`
	SecretGenerator []struct {
		Name     string   `yaml:"name"`
		Literals []string `yaml:"literals"`
	} `yaml:"secretGenerator"`
	Images []struct {
		Name string `yaml:"name"`
	} `yaml:"images"`
}

func literals(list []string) map[string]string {
	out := map[string]string{}
	for _, l := range list {
		k, v, _ := strings.Cut(l, "=")
		out[k] = v
	}
	return out
}

// TestKubernetes checks deployments/k8s: the kustomization lists every manifest and renders, each
// service Deployment runs a real subcommand with jobwire's variables, listens where its probes look,
// gets enough time to stop, has resources and a PodDisruptionBudget.
func TestKubernetes(t *testing.T) {
	dir := filepath.Join(deployDir, "k8s")
	data, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k kustomization
	if err := yaml.Unmarshal(data, &k); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	for _, f := range files {
		if base := filepath.Base(f); base != "kustomization.yaml" && !slices.Contains(k.Resources, base) {
			t.Errorf("%s is not in kustomization.yaml's resources", base)
		}
	}
	configs := map[string]map[string]string{}
	for _, g := range k.ConfigMapGenerator {
		configs[g.Name] = literals(g.Literals)
		checkEnvNames(t, "configMap "+g.Name, configs[g.Name])
	}
	secrets := map[string]map[string]string{}
	for _, g := range k.SecretGenerator {
		secrets[g.Name] = literals(g.Literals)
	}
	users := confUsers(t)
	for cmd, user := range serviceUsers {
		if secrets["jobwire-nats"][cmd] != users[user].Password {
			t.Errorf("secret jobwire-nats key %s is %q, accounts.conf has %q for user %s", cmd, secrets["jobwire-nats"][cmd], users[user].Password, user)
		}
	}

	var objects []k8sObject
	for _, r := range k.Resources {
		data, err := os.ReadFile(filepath.Join(dir, r))
		if err != nil {
			t.Fatalf("resource %s: %v", r, err)
		}
		dec := yaml.NewDecoder(strings.NewReader(string(data)))
		for {
			var o k8sObject
			if err := dec.Decode(&o); err != nil {
				if !errors.Is(err, io.EOF) {
					t.Fatalf("%s: %v", r, err)
				}
				break
			}
			objects = append(objects, o)
		}
	}
	seen := map[string]int{}
	for _, o := range objects {
		if o.Kind != "Deployment" {
			continue
		}
		var spec deploymentSpec
		if err := o.Spec.Decode(&spec); err != nil {
			t.Fatalf("deployment %s: %v", o.Metadata.Name, err)
		}
		cmd := checkDeployment(t, o.Metadata.Name, spec, configs, secrets)
		seen[cmd] += spec.Replicas
		checkSelected(t, objects, "PodDisruptionBudget", o.Metadata.Name, spec.Template.Metadata.Labels)
		if cmd == "gateway" {
			checkSelected(t, objects, "Service", o.Metadata.Name, spec.Template.Metadata.Labels)
			checkGatewayService(t, objects, spec, listenPort(t, cmd, deploymentEnv(spec, configs, secrets)))
		}
	}
	for _, cmd := range serviceCommands {
		if seen[cmd] == 0 {
			t.Errorf("no Deployment runs jobwire %s", cmd)
		}
	}
	if seen["gateway"] < 2 || seen["worker"] < 2 {
		t.Errorf("want at least 2 gateways and 2 workers, have %d and %d", seen["gateway"], seen["worker"])
	}

	// The NATS chart values include accounts.conf.
	vdata, err := os.ReadFile(filepath.Join(dir, "nats", "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var values struct {
		Config struct {
			Cluster struct {
				Enabled  bool `yaml:"enabled"`
				Replicas int  `yaml:"replicas"`
			} `yaml:"cluster"`
			JetStream struct {
				Enabled bool `yaml:"enabled"`
			} `yaml:"jetstream"`
			Merge map[string]any `yaml:"merge"`
		} `yaml:"config"`
	}
	if err := yaml.Unmarshal(vdata, &values); err != nil {
		t.Fatalf("nats/values.yaml: %v", err)
	}
	if !values.Config.Cluster.Enabled || values.Config.Cluster.Replicas != 3 || !values.Config.JetStream.Enabled || values.Config.Merge["$include"] != "accounts.conf" {
		t.Errorf("nats/values.yaml: want a 3-node JetStream cluster including accounts.conf, got %+v", values.Config)
	}

	// kubectl renders it, when it is installed.
	if kubectl, err := exec.LookPath("kubectl"); err == nil {
		out, err := exec.Command(kubectl, "kustomize", dir).CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl kustomize: %v\n%s", err, out)
		}
		for _, want := range []string{"kind: Deployment", "kind: PodDisruptionBudget", "image: registry.example.com/jobwire"} {
			if strings.Count(string(out), want) < 1 {
				t.Errorf("kubectl kustomize output has no %q", want)
			}
		}
	} else {
		t.Log("kubectl not installed: the kustomization was checked, not rendered")
	}
}

// checkDeployment checks one service Deployment and returns the jobwire command it runs.
func checkDeployment(t *testing.T, name string, spec deploymentSpec, configs, secrets map[string]map[string]string) string {
	t.Helper()
	if len(spec.Template.Spec.Containers) != 1 {
		t.Fatalf("%s: want one container", name)
	}
	c := spec.Template.Spec.Containers[0]
	if len(c.Command) != 0 || len(c.Args) == 0 {
		t.Fatalf("%s: run the image's ENTRYPOINT with args [<subcommand>], not command %v args %v", name, c.Command, c.Args)
	}
	cmd := c.Args[0]
	checkSubcommand(t, cmd)
	if !slices.Contains(serviceCommands, cmd) {
		t.Errorf("%s: runs %q, not a service", name, cmd)
	}
	if c.Image != "jobwire" {
		t.Errorf("%s: image %q, want jobwire (set by kustomization images)", name, c.Image)
	}
	for _, ef := range c.EnvFrom {
		if ef.ConfigMapRef == nil || configs[ef.ConfigMapRef.Name] == nil {
			t.Errorf("%s: envFrom names no generated ConfigMap", name)
		}
	}
	for _, e := range c.Env {
		if ref := secretRef(e.ValueFrom); ref != nil {
			if _, ok := secrets[ref.Name][ref.Key]; !ok {
				t.Errorf("%s: %s refers to secret %s key %s, which the kustomization does not make", name, e.Name, ref.Name, ref.Key)
			}
		}
	}
	env := deploymentEnv(spec, configs, secrets)
	checkEnvNames(t, "deployment "+name, env)
	if env["NATS_USER"] != serviceUsers[cmd] {
		t.Errorf("%s: NATS_USER=%q, want %q", name, env["NATS_USER"], serviceUsers[cmd])
	}
	if cmd == "mirror" && env["REDIS_URL"] == "" {
		t.Errorf("%s: no REDIS_URL", name)
	}

	port := listenPort(t, cmd, env)
	ports := map[string]int{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if !slices.Contains(mapValues(ports), port) {
		t.Errorf("%s: listens on %d, container ports %v", name, port, ports)
	}
	metrics := checkMetricsPort(t, name, env, mapValues(ports))
	if ann := spec.Template.Metadata.Annotations; ann["prometheus.io/port"] != strconv.Itoa(metrics) || ann["prometheus.io/path"] != "/metrics" {
		t.Errorf("%s: scrape annotations %v, want port %d path /metrics", name, ann, metrics)
	}
	probePort := func(p *k8sProbe) (string, int) {
		if p == nil || p.HTTPGet == nil {
			return "", 0
		}
		if n, err := strconv.Atoi(p.HTTPGet.Port.Value); err == nil {
			return p.HTTPGet.Path, n
		}
		return p.HTTPGet.Path, ports[p.HTTPGet.Port.Value]
	}
	if path, p := probePort(c.LivenessProbe); path != "/healthz" || p != port {
		t.Errorf("%s: liveness probe GET %s on %d, want /healthz on %d", name, path, p, port)
	}
	if path, p := probePort(c.ReadinessProbe); path != "/readyz" || p != port {
		t.Errorf("%s: readiness probe GET %s on %d, want /readyz on %d", name, path, p, port)
	}
	if c.StartupProbe != nil {
		if path, p := probePort(c.StartupProbe); (path != "/readyz" && path != "/healthz") || p != port {
			t.Errorf("%s: startup probe GET %s on %d", name, path, p)
		}
	}

	gp := spec.Template.Spec.TerminationGracePeriodSeconds
	need := minGrace(t, cmd, env)
	if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && c.Lifecycle.PreStop.Sleep != nil {
		need += time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
	}
	if gp == nil {
		t.Errorf("%s: no terminationGracePeriodSeconds, want at least %s", name, need)
	} else if time.Duration(*gp)*time.Second < need {
		t.Errorf("%s: terminationGracePeriodSeconds %d, want at least %s", name, *gp, need)
	}
	for _, r := range []string{"cpu", "memory"} {
		if c.Resources.Requests[r] == "" || c.Resources.Limits[r] == "" {
			t.Errorf("%s: %s request and limit must be set: %+v", name, r, c.Resources)
		}
	}
	if !spec.Template.Spec.SecurityContext.RunAsNonRoot || !c.SecurityContext.ReadOnlyRootFilesystem ||
		c.SecurityContext.AllowPrivilegeEscalation == nil || *c.SecurityContext.AllowPrivilegeEscalation {
		t.Errorf("%s: run as non-root, read-only root, no privilege escalation", name)
	}
	for k, v := range spec.Selector.MatchLabels {
		if spec.Template.Metadata.Labels[k] != v {
			t.Errorf("%s: selector %s=%s does not match the pod labels", name, k, v)
		}
	}
	return cmd
}

type secretKeyRef struct {
	Name string `yaml:"name"`
	Key  string `yaml:"key"`
}

func secretRef(vf *struct {
	SecretKeyRef *secretKeyRef `yaml:"secretKeyRef"`
}) *secretKeyRef {
	if vf == nil {
		return nil
	}
	return vf.SecretKeyRef
}

// deploymentEnv is the environment of a Deployment's container: its ConfigMaps, then its env (secret
// references resolved to the generated values).
func deploymentEnv(spec deploymentSpec, configs, secrets map[string]map[string]string) map[string]string {
	c := spec.Template.Spec.Containers[0]
	env := map[string]string{}
	for _, ef := range c.EnvFrom {
		if ef.ConfigMapRef != nil {
			for k, v := range configs[ef.ConfigMapRef.Name] {
				env[k] = v
			}
		}
	}
	for _, e := range c.Env {
		env[e.Name] = e.Value
		if ref := secretRef(e.ValueFrom); ref != nil {
			env[e.Name] = secrets[ref.Name][ref.Key]
		}
	}
	return env
}

func mapValues(m map[string]int) []int {
	var out []int
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// checkSelected checks that an object of kind selects the pods with labels (a PDB, a Service).
func checkSelected(t *testing.T, objects []k8sObject, kind, deployment string, labels map[string]string) {
	t.Helper()
	for _, o := range objects {
		if o.Kind != kind {
			continue
		}
		var spec struct {
			Selector yaml.Node `yaml:"selector"`
		}
		_ = o.Spec.Decode(&spec)
		var sel struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		}
		var flat map[string]string
		if kind == "Service" {
			_ = spec.Selector.Decode(&flat)
		} else {
			_ = spec.Selector.Decode(&sel)
			flat = sel.MatchLabels
		}
		if len(flat) == 0 {
			continue
		}
		matches := true
		for k, v := range flat {
			if labels[k] != v {
				matches = false
			}
		}
		if matches {
			return
		}
	}
	t.Errorf("no %s selects the pods of %s", kind, deployment)
}

// checkGatewayService checks that the gateway Service sends to the port the gateway listens on.
func checkGatewayService(t *testing.T, objects []k8sObject, spec deploymentSpec, listen int) {
	t.Helper()
	c := spec.Template.Spec.Containers[0]
	for _, o := range objects {
		if o.Kind != "Service" {
			continue
		}
		var s struct {
			Ports []struct {
				TargetPort yaml.Node `yaml:"targetPort"`
			} `yaml:"ports"`
		}
		if err := o.Spec.Decode(&s); err != nil {
			t.Fatalf("service %s: %v", o.Metadata.Name, err)
		}
		for _, p := range s.Ports {
			target := 0
			for _, cp := range c.Ports {
				if cp.Name == p.TargetPort.Value || strconv.Itoa(cp.ContainerPort) == p.TargetPort.Value {
					target = cp.ContainerPort
				}
			}
			if target != listen {
				t.Errorf("Service %s: targetPort %s is not the port the gateway listens on (%d)", o.Metadata.Name, p.TargetPort.Value, listen)
			}
		}
	}
}

// checkStatic checks that the binary is statically linked and stripped, as the image needs.
func checkStatic(t *testing.T, path string) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("jobwire is dynamically linked (PT_INTERP): distroless/static has no libc")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("jobwire needs shared libraries %v", libs)
	}
	if f.Section(".symtab") != nil {
		t.Error("jobwire keeps its symbol table: -ldflags \"-s -w\" did not apply")
	}
}
