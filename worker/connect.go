package worker

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
)

// ConnectOptions say how Connect reaches NATS.
type ConnectOptions struct {
	// URL is a comma-separated list of server URLs (NATS_URL). Default nats://127.0.0.1:4222.
	URL string
	// Name identifies the connection on the server (shown by `nats server report connections`).
	Name string
	// User and Password, or CredsFile, authenticate the process (NATS_USER, NATS_PASSWORD, NATS_CREDS).
	User, Password, CredsFile string
	// Logger receives connection events. Default slog.Default().
	Logger *slog.Logger
}

// Connect connects to NATS the way every jobwire process does: it keeps trying when the server is
// not up yet, reconnects forever with jitter, buffers up to 8 MiB of publishes while disconnected, and
// logs every change of connection state.
func Connect(o ConnectOptions) (*nats.Conn, error) {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	if o.URL == "" {
		o.URL = nats.DefaultURL
	}
	opts := []nats.Option{
		nats.Name(o.Name),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectJitter(250*time.Millisecond, time.Second),
		nats.ReconnectBufSize(8 << 20),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			log.Warn("nats disconnected", "err", err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("nats reconnected", "url", nc.ConnectedUrlRedacted())
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			log.Error("nats async error", "subject", subject, "err", err)
		}),
	}
	if o.User != "" {
		opts = append(opts, nats.UserInfo(o.User, o.Password))
	}
	if o.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(o.CredsFile))
	}
	nc, err := nats.Connect(o.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to nats %s: %w", o.URL, err)
	}
	return nc, nil
}
