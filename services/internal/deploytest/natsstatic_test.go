package deploytest

import (
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/jobwire/jobwire/services/internal/config"
)

// serviceUsers are the NATS users of the services, by the jobwire command that runs as each.
var serviceUsers = map[string]string{"gateway": "gateway", "worker": "worker", "projector": "projector", "mirror": "mirror"}

// TestNATSConfigs loads every NATS config the way nats-server does and checks what the deployment
// relies on: explicit JetStream limits, the accounts and users, and a cluster whose routes fit together.
func TestNATSConfigs(t *testing.T) {
	bodyLimit, _ := strconv.Atoi(varDefault(t, "JOBWIRE_BODY_LIMIT"))
	var cluster []*server.Options
	for _, rel := range []string{"single.conf", "cluster/n1.conf", "cluster/n2.conf", "cluster/n3.conf"} {
		t.Run(rel, func(t *testing.T) {
			o, err := server.ProcessConfigFile(filepath.Join(deployDir, "nats", rel))
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			if strings.HasPrefix(rel, "cluster/") {
				cluster = append(cluster, o)
			}
			checkServerOptions(t, o, bodyLimit)
			checkUsers(t, o)
		})
	}
	if len(cluster) != 3 {
		t.Fatal("cluster configs did not load")
	}
	t.Run("cluster", func(t *testing.T) { checkCluster(t, cluster) })

	t.Run("without self-ensure", func(t *testing.T) {
		// What remains once the services stop creating the topology: no stream administration at all,
		// except the gateway's of the rate limits' ticket streams, which operators set through it.
		dir := copyNATSConfs(t, true)
		o, err := server.ProcessConfigFile(filepath.Join(dir, "single.conf"))
		if err != nil {
			t.Fatalf("load stripped config: %v", err)
		}
		for _, u := range o.Users {
			if _, ok := serviceUsers[u.Username]; !ok {
				continue
			}
			for _, s := range u.Permissions.Publish.Allow {
				ticketStream := u.Username == "gateway" && strings.Contains(s, ".JOBS_RATE_")
				if (strings.HasPrefix(s, "$JS.API.STREAM.CREATE.") || strings.HasPrefix(s, "$JS.API.STREAM.UPDATE.") || s == "$JS.API.INFO") && !ticketStream {
					t.Errorf("user %s keeps %s outside a self-ensure block", u.Username, s)
				}
			}
		}
	})
}

func checkServerOptions(t *testing.T, o *server.Options, bodyLimit int) {
	t.Helper()
	switch {
	case !o.JetStream:
		t.Error("JetStream is off")
	case o.JetStreamMaxMemory <= 0 || o.JetStreamMaxStore <= 0:
		t.Errorf("JetStream max_memory_store %d / max_file_store %d not set", o.JetStreamMaxMemory, o.JetStreamMaxStore)
	case o.StoreDir == "":
		t.Error("no store_dir")
	}
	l := o.JetStreamLimits
	if l.MaxAckPending < 10000 || l.MaxRequestBatch < 500 || l.DefaultMaxConsumers <= 0 || l.Duplicates <= 0 {
		t.Errorf("JetStream limits not written out or too small for jobwire: %+v", l)
	}
	if o.HTTPPort <= 0 {
		t.Error("no monitoring port (http_port)")
	}
	if int(o.MaxPayload) < bodyLimit+4096 {
		t.Errorf("max_payload %d cannot carry a job message with a JOBWIRE_BODY_LIMIT (%d) playlist", o.MaxPayload, bodyLimit)
	}
	if o.MaxConn <= 0 || o.LameDuckDuration <= 0 {
		t.Errorf("max_connections %d, lame_duck_duration %s: write them out", o.MaxConn, o.LameDuckDuration)
	}
	if o.SystemAccount != "SYS" {
		t.Errorf("system_account %q, want SYS", o.SystemAccount)
	}
}

// checkUsers checks the users and their roles as the server parsed them.
func checkUsers(t *testing.T, o *server.Options) {
	t.Helper()
	users := map[string]*server.User{}
	for _, u := range o.Users {
		users[u.Username] = u
	}
	for _, name := range []string{"admin", "gateway", "worker", "projector", "mirror", "sys"} {
		u := users[name]
		if u == nil {
			t.Fatalf("no user %s", name)
		}
		want := "JOBWIRE"
		if name == "sys" {
			want = "SYS"
		}
		if u.Account == nil || u.Account.Name != want {
			t.Errorf("user %s not in account %s", name, want)
		}
	}
	if p := users["admin"].Permissions; p == nil || !slices.Equal(p.Publish.Allow, []string{">"}) || !slices.Equal(p.Subscribe.Allow, []string{">"}) {
		t.Errorf("admin must have every permission: %+v", users["admin"].Permissions)
	}
	mustDeny := map[string][]string{
		"gateway":   {"$KV.JOB_STATE.>", "$JS.API.CONSUMER.MSG.NEXT.JOBS.>"},
		"worker":    {"$KV.JOB_STATE.>"},
		"projector": {"jobs.queue.>", "jobs.schedule.>"},
		"mirror":    {"jobs.>", "$KV.>"},
	}
	for name := range serviceUsers {
		p := users[name].Permissions
		if p == nil || p.Publish == nil || p.Subscribe == nil {
			t.Errorf("user %s has no publish and subscribe permissions", name)
			continue
		}
		for _, s := range append(p.Publish.Allow, p.Subscribe.Allow...) {
			if s == ">" || s == "$JS.API.>" || s == "$JS.>" || s == "$KV.>" {
				t.Errorf("user %s is allowed %q: far more than its role", name, s)
			}
		}
		for _, s := range mustDeny[name] {
			if !slices.Contains(p.Publish.Deny, s) {
				t.Errorf("user %s: publish deny list lacks %s", name, s)
			}
		}
	}
}

func checkCluster(t *testing.T, nodes []*server.Options) {
	names := map[string]bool{}
	listen := map[string]string{} // cluster listen address -> server name
	ports := map[int]string{}
	for _, o := range nodes {
		if names[o.ServerName] {
			t.Errorf("server name %s used twice", o.ServerName)
		}
		names[o.ServerName] = true
		if o.Cluster.Name != "jobwire" {
			t.Errorf("%s: cluster name %q, want jobwire", o.ServerName, o.Cluster.Name)
		}
		if o.JetStreamLimits.MaxHAAssets <= 0 {
			t.Errorf("%s: max_ha_assets not written out", o.ServerName)
		}
		listen[net.JoinHostPort(o.Cluster.Host, strconv.Itoa(o.Cluster.Port))] = o.ServerName
		for _, p := range []int{o.Port, o.HTTPPort, o.Cluster.Port} {
			if other, dup := ports[p]; dup {
				t.Errorf("port %d used by %s and %s: the nodes cannot share a host", p, other, o.ServerName)
			}
			ports[p] = o.ServerName
		}
	}
	for _, o := range nodes {
		var got []string
		for _, r := range o.Routes {
			name, ok := listen[r.Host]
			if !ok {
				t.Errorf("%s: route %s is no node's cluster address", o.ServerName, r)
				continue
			}
			got = append(got, name)
		}
		slices.Sort(got)
		var want []string
		for name := range names {
			if name != o.ServerName {
				want = append(want, name)
			}
		}
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s routes to %v, want the other nodes %v", o.ServerName, got, want)
		}
	}
}

// varDefault is the documented default of an environment variable.
func varDefault(t *testing.T, name string) string {
	t.Helper()
	for _, v := range config.Vars {
		if v.Name == name {
			return v.Default
		}
	}
	t.Fatalf("config.Vars has no %s", name)
	return ""
}
