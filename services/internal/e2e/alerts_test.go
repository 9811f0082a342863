package e2e_test

import (
	"bufio"
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/services/internal/auth"
	"github.com/jobwire/jobwire/services/internal/testkit"
)

// alertRules is deployments/prometheus/jobwire-alerts.yaml, as far as the test reads it.
type alertRules struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// Every metric the shipped alert rules use is served by a running jobwire (dev: gateway, worker,
// projector and mirror in one process) once it has done what the alert watches: a job run, a stream
// refused. promtool checks the rules' syntax when it is installed.
func TestAlertRulesUseMetricsThatExist(t *testing.T) {
	path := filepath.Join("..", "..", "..", "deployments", "prometheus", "jobwire-alerts.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rules alertRules
	if err := yaml.Unmarshal(data, &rules); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	served := servedMetrics(t)
	used := regexp.MustCompile(`\bjobwire_[a-z_]+\b`)
	alerts := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			alerts++
			if r.Alert == "" || r.Annotations["summary"] == "" || !slices.Contains([]string{"warning", "critical"}, r.Labels["severity"]) {
				t.Errorf("group %s: rule %q needs a name, a summary and a severity (warning or critical)", g.Name, r.Alert)
			}
			for _, name := range used.FindAllString(r.Expr, -1) {
				if !served[name] {
					t.Errorf("alert %s uses %s, which no jobwire process serves", r.Alert, name)
				}
			}
		}
	}
	if alerts < 4 {
		t.Fatalf("%d alerts in %s", alerts, path)
	}
	if promtool, err := exec.LookPath("promtool"); err == nil {
		if out, err := exec.Command(promtool, "check", "rules", path).CombinedOutput(); err != nil {
			t.Fatalf("promtool check rules: %v\n%s", err, out)
		}
	} else {
		t.Log("promtool not installed: the rules' PromQL was not parsed")
	}
}

// servedMetrics starts `jobwire dev` with the Redis mirror, runs an import to its end, has one stream
// refused by the per-user limit, and returns the names of every metric its /metrics then serves.
func servedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	redis := testkit.StartRedis(t)
	env, base := devEnv(t, t.TempDir())
	metricsAddr := testkit.FreeAddr(t)
	env["JOBWIRE_METRICS_ADDR"] = metricsAddr
	env["REDIS_URL"] = redis.URL()
	env["JOBWIRE_SSE_MAX_PER_USER"] = "1"
	startProc(t, "dev", env, "dev")
	waitReady(t, base)
	tok, _ := auth.NewSigner([]byte(processSecret), "").Sign("alice", time.Hour, "", "")
	c := api.NewClient(base, tok)
	st, _, err := c.Submit(context.Background(), importRequest("alerts", api.FormatCSV, "artist,title\nA,B"), "")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, c, st.ID, func(s api.JobState) bool { return s.State == api.StateCompleted })

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for i, want := range []int{http.StatusOK, http.StatusTooManyRequests} {
		req, _ := http.NewRequestWithContext(ctx, "GET", base+"/v1/events", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != want {
			t.Fatalf("stream %d: %v %v, want %d", i, err, resp, want)
		}
		if want != http.StatusOK {
			resp.Body.Close()
		}
	}

	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	names := map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, _, _ := strings.Cut(line, " ")
		name, _, _ = strings.Cut(name, "{")
		names[name] = true
	}
	return names
}
