package deploytest

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/streams"
)

// scaledObject is the part of a KEDA ScaledObject the test checks.
type scaledObject struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Spec struct {
		ScaleTargetRef struct {
			Name string `yaml:"name"`
		} `yaml:"scaleTargetRef"`
		MinReplicaCount int `yaml:"minReplicaCount"`
		MaxReplicaCount int `yaml:"maxReplicaCount"`
		CooldownPeriod  int `yaml:"cooldownPeriod"`
		Triggers        []struct {
			Type     string            `yaml:"type"`
			Metadata map[string]string `yaml:"metadata"`
		} `yaml:"triggers"`
	} `yaml:"spec"`
}

// The KEDA overlay scales the worker Deployment on its own JetStream consumer's backlog, asking the
// monitoring port the NATS chart opens, in the account the worker's user belongs to, and never below
// the Deployment's replicas or faster than a worker stops.
func TestKubernetesAutoscaling(t *testing.T) {
	dir := filepath.Join(deployDir, "keda")
	var k kustomization
	readYAML(t, filepath.Join(dir, "kustomization.yaml"), &k)
	if !slices.Contains(k.Resources, "../k8s") || !slices.Contains(k.Resources, "worker-scaler.yaml") {
		t.Fatalf("keda/kustomization.yaml resources %v: want the base (../k8s) and worker-scaler.yaml", k.Resources)
	}
	var so scaledObject
	readYAML(t, filepath.Join(dir, "worker-scaler.yaml"), &so)
	worker := workerDeployment(t)
	if so.Kind != "ScaledObject" || so.Spec.ScaleTargetRef.Name != worker.Metadata.Name {
		t.Fatalf("%s %q scales %q, want a ScaledObject of %q", so.Kind, so.Metadata.Name, so.Spec.ScaleTargetRef.Name, worker.Metadata.Name)
	}
	if so.Spec.MinReplicaCount < worker.Spec.Replicas || so.Spec.MaxReplicaCount <= so.Spec.MinReplicaCount {
		t.Errorf("replicas %d..%d: want at least the Deployment's %d, and room to grow", so.Spec.MinReplicaCount, so.Spec.MaxReplicaCount, worker.Spec.Replicas)
	}
	if so.Spec.CooldownPeriod <= worker.Spec.Template.Spec.TerminationGracePeriodSeconds {
		t.Errorf("cooldownPeriod %d s is not longer than the worker's termination grace %d s", so.Spec.CooldownPeriod, worker.Spec.Template.Spec.TerminationGracePeriodSeconds)
	}
	if len(so.Spec.Triggers) != len(streams.Priorities) {
		t.Fatalf("triggers %+v: want one nats-jetstream trigger per priority level", so.Spec.Triggers)
	}
	for i, p := range streams.Priorities {
		trigger := so.Spec.Triggers[i]
		m := trigger.Metadata
		want := map[string]string{
			"stream":                       streams.StreamJobs,
			"consumer":                     streams.WorkerConsumerAt(api.JobTypePlaylistImport, p),
			"account":                      accountOf(t, "worker"),
			"natsServerMonitoringEndpoint": "nats-headless.jobwire.svc.cluster.local:" + strconv.Itoa(chartMonitorPort(t)),
		}
		if trigger.Type != "nats-jetstream" {
			t.Errorf("trigger %d is %q, want nats-jetstream", i, trigger.Type)
		}
		for key, v := range want {
			if m[key] != v {
				t.Errorf("trigger %d %s = %q, want %q", i, key, m[key], v)
			}
		}
		if n, err := strconv.Atoi(m["lagThreshold"]); err != nil || n <= 0 {
			t.Errorf("lagThreshold %q: want a positive number of pending jobs per replica", m["lagThreshold"])
		}
	}
	if kubectl, err := exec.LookPath("kubectl"); err == nil {
		out, err := exec.Command(kubectl, "kustomize", dir).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "kind: ScaledObject") || !strings.Contains(string(out), "kind: Deployment") {
			t.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, out)
		}
	}
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// workerDeployment is the Deployment of deployments/k8s/worker.yaml.
func workerDeployment(t *testing.T) (d struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Spec struct {
		Replicas int `yaml:"replicas"`
		Template struct {
			Spec struct {
				TerminationGracePeriodSeconds int `yaml:"terminationGracePeriodSeconds"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(deployDir, "k8s", "worker.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	for {
		if err := dec.Decode(&d); err != nil {
			if errors.Is(err, io.EOF) {
				t.Fatal("worker.yaml has no Deployment")
			}
			t.Fatal(err)
		}
		if d.Kind == "Deployment" {
			return d
		}
	}
}

// accountOf is the name of the account of accounts.conf that holds user.
func accountOf(t *testing.T, user string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(deployDir, "nats", "accounts.conf"))
	if err != nil {
		t.Fatal(err)
	}
	account := ""
	accountRE := regexp.MustCompile(`^  ([A-Z][A-Z0-9_]*) \{`)
	userRE := regexp.MustCompile(`user: "` + regexp.QuoteMeta(user) + `"`)
	for _, line := range strings.Split(string(data), "\n") {
		if m := accountRE.FindStringSubmatch(line); m != nil {
			account = m[1]
		}
		if userRE.MatchString(line) {
			return account
		}
	}
	t.Fatalf("accounts.conf has no user %q", user)
	return ""
}

// chartMonitorPort is the monitoring port the NATS chart's values open.
func chartMonitorPort(t *testing.T) int {
	t.Helper()
	var values struct {
		Config struct {
			Monitor struct {
				Enabled bool `yaml:"enabled"`
				Port    int  `yaml:"port"`
			} `yaml:"monitor"`
		} `yaml:"config"`
	}
	readYAML(t, filepath.Join(deployDir, "k8s", "nats", "values.yaml"), &values)
	if !values.Config.Monitor.Enabled || values.Config.Monitor.Port == 0 {
		t.Fatalf("nats/values.yaml: the monitoring port is not enabled: %+v", values.Config.Monitor)
	}
	return values.Config.Monitor.Port
}
