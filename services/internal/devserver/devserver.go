// Package devserver runs the embedded nats-server of `jobwire dev`: JetStream on disk, the usual client
// port so the nats CLI works without flags, a monitoring port, and a system account so operators can
// run `nats server report jetstream --user sys --password sys`.
package devserver

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Options configure the embedded server.
type Options struct {
	// DataDir holds the JetStream store (in DataDir/nats).
	DataDir string
	// Host and Port of the client listener. Defaults DefaultHost and DefaultPort; Port -1 picks a free one.
	Host string
	Port int
	// MonitorAddr is host:port of the monitoring endpoint; empty disables it.
	MonitorAddr string
}

// Defaults of Options.
const (
	DefaultHost        = "127.0.0.1"
	DefaultPort        = 4222
	DefaultMonitorAddr = "127.0.0.1:8222"
)

// SystemUser and SystemPassword log in to the system account of the dev server.
const (
	SystemUser     = "sys"
	SystemPassword = "sys"
)

// Start starts the server and waits until it accepts connections.
func Start(o Options) (*server.Server, error) {
	if o.Host == "" {
		o.Host = DefaultHost
	}
	if o.Port == 0 {
		o.Port = DefaultPort
	}
	store, err := filepath.Abs(filepath.Join(o.DataDir, "nats"))
	if err != nil {
		return nil, fmt.Errorf("dev server store dir: %w", err)
	}
	if err := os.MkdirAll(store, 0o750); err != nil {
		return nil, fmt.Errorf("dev server store dir: %w", err)
	}
	// The app account is what clients without credentials land in (no_auth_user); the system account
	// is for server reports.
	conf := fmt.Sprintf(`
server_name: jobwire-dev
max_payload: 8MB
jetstream {
  store_dir: %q
  max_memory_store: 256MB
  max_file_store: 20GB
}
accounts {
  APP { jetstream: enabled, users: [ { user: app, password: app } ] }
  SYS { users: [ { user: %s, password: %s } ] }
}
system_account: SYS
no_auth_user: app
`, store, SystemUser, SystemPassword)
	opts := &server.Options{}
	if err := opts.ProcessConfigString(conf); err != nil {
		return nil, fmt.Errorf("dev server config: %w", err)
	}
	opts.Host, opts.Port = o.Host, o.Port
	opts.NoSigs = true
	opts.NoLog = true
	if o.MonitorAddr != "" {
		host, port, err := net.SplitHostPort(o.MonitorAddr)
		if err != nil {
			return nil, fmt.Errorf("monitor address %q: %w", o.MonitorAddr, err)
		}
		opts.HTTPHost = host
		if opts.HTTPPort, err = strconv.Atoi(port); err != nil {
			return nil, fmt.Errorf("monitor address %q: %w", o.MonitorAddr, err)
		}
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("dev server: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(15 * time.Second) {
		ns.Shutdown()
		return nil, fmt.Errorf("dev server did not start on %s:%d (port in use?)", o.Host, o.Port)
	}
	return ns, nil
}
