// Package natsconn opens the NATS connection every jobwire service uses: it retries the first connect,
// reconnects forever, and logs every change of connection state.
package natsconn

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Options configure Connect.
type Options struct {
	// URL is a comma-separated list of server URLs (NATS_URL).
	URL string
	// Name identifies the connection on the server (shown by `nats server report connections`).
	Name string
	// User and Password, or CredsFile, authenticate the service (NATS_USER, NATS_PASSWORD, NATS_CREDS).
	User, Password, CredsFile string
	// Logger receives connection events.
	Logger *slog.Logger
}

// Connect connects to NATS and returns the connection and its JetStream context. The connection
// reconnects forever with jitter, and buffers up to 8 MiB of publishes while disconnected.
func Connect(o Options) (*nats.Conn, jetstream.JetStream, error) {
	log := o.Logger
	if log == nil {
		log = slog.Default()
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
		return nil, nil, fmt.Errorf("connect to nats %s: %w", o.URL, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("jetstream context: %w", err)
	}
	return nc, js, nil
}
