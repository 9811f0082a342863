package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/jobwire/jobwire/services/internal/auth"
	"github.com/jobwire/jobwire/services/internal/devserver"
)

func newDevCmd() *cobra.Command {
	var user string
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run everything in one process on an embedded NATS server (data in JOBWIRE_DATA_DIR)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p := newProcess("dev", "text")
			env := p.env
			ns, err := devserver.Start(devserver.Options{
				DataDir:     env.String("JOBWIRE_DATA_DIR"),
				Port:        env.Int("JOBWIRE_NATS_PORT"),
				MonitorAddr: env.String("JOBWIRE_NATS_MONITOR_ADDR"),
			})
			if err != nil {
				return err
			}
			defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
			if err := p.connect(cmd.Context(), "jobwire-dev", ns.ClientURL()); err != nil {
				return err
			}
			defer p.close()

			secret := env.String("JOBWIRE_JWT_SECRET")
			if secret == "" {
				path := filepath.Join(env.String("JOBWIRE_DATA_DIR"), devSecretFile)
				if secret, err = devSecret(path); err != nil {
					return err
				}
				p.log.Info("JOBWIRE_JWT_SECRET not set: signing with the development secret kept in the data dir", "path", path)
			}
			gw, err := p.gatewayService([]byte(secret))
			if err != nil {
				return err
			}
			w, err := p.workerService()
			if err != nil {
				return err
			}
			svcs := []service{p.projectorService(), w}
			m, err := p.mirrorService()
			if err != nil {
				return err
			}
			if m != nil {
				svcs = append(svcs, m)
			}
			svcs = append(svcs, gw, p.gatewayOps(gw), &announcer{p: p, gw: gw, secret: secret, user: user, natsURL: ns.ClientURL()})
			return run(cmd.Context(), p.log, svcs...)
		},
	}
	cmd.Flags().StringVar(&user, "user", "dev", "user the printed development token is for")
	return cmd
}

// devSecretFile holds the HS256 secret `jobwire dev` makes up when JOBWIRE_JWT_SECRET is unset, in its
// data dir, so its tokens and the signed-in page keep working after a restart.
const devSecretFile = "dev-jwt-secret"

// devSecret returns the secret kept at path, making and storing a random one (readable by the owner
// only) the first time.
func devSecret(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err == nil && len(strings.TrimSpace(string(data))) >= 32 {
		return strings.TrimSpace(string(data)), nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("read the development secret: %w", err)
	}
	secret := randomSecret()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("keep the development secret: %w", err)
	}
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("keep the development secret: %w", err)
	}
	return secret, nil
}

// announcer prints how to use the dev server once everything is up.
type announcer struct {
	p       *process
	gw      interface{ Addr() string }
	secret  string
	user    string
	natsURL string
}

func (a *announcer) Start(context.Context) error { return a.announce() }

func (a *announcer) Stop() {}

// devTokenTTL is the lifetime of the token jobwire dev prints (JOBWIRE_JWT_MAX_LIFETIME, when shorter).
const devTokenTTL = 24 * time.Hour

func (a *announcer) announce() error {
	ttl := devTokenTTL
	if limit := a.p.env.Duration("JOBWIRE_JWT_MAX_LIFETIME"); limit > 0 {
		ttl = min(ttl, limit)
	}
	token, err := auth.NewSigner([]byte(a.secret), a.p.env.String("JOBWIRE_JWT_ISSUER"), auth.SignAudience(a.p.env.String("JOBWIRE_JWT_AUDIENCE"))).Sign(a.user, ttl, "", "")
	if err != nil {
		return err
	}
	_, port, _ := net.SplitHostPort(a.gw.Addr())
	base := "http://127.0.0.1:" + port
	var b strings.Builder
	fmt.Fprintf(&b, "\njobwire dev is running\n")
	fmt.Fprintf(&b, "  web page:   %s/#token=%s\n", base, token)
	fmt.Fprintf(&b, "  NATS:       %s  (nats stream ls; system account: --user %s --password %s)\n", a.natsURL, devserver.SystemUser, devserver.SystemPassword)
	fmt.Fprintf(&b, "  token (%s, 24 h):\n    export JOBWIRE_TOKEN=%s\n", a.user, token)
	fmt.Fprintf(&b, "  try:\n    curl -s -H \"Authorization: Bearer $JOBWIRE_TOKEN\" -H 'Content-Type: application/json' \\\n")
	fmt.Fprintf(&b, "      -d '{\"type\":\"playlist.import\",\"input\":{\"name\":\"demo\",\"format\":\"csv\",\"content\":\"artist,title\\nNina Simone,Feeling Good\"}}' %s/v1/jobs\n", base)
	fmt.Fprintf(&b, "    curl -N \"%s/v1/events?access_token=$JOBWIRE_TOKEN\"\n", base)
	fmt.Fprintf(&b, "  your own job types: run a worker built on the SDK (examples/count), then\n")
	fmt.Fprintf(&b, "    curl -s -H \"Authorization: Bearer $JOBWIRE_TOKEN\" %s/v1/job-types\n\n", base)
	_, err = os.Stdout.WriteString(b.String())
	return err
}
