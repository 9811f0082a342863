package auth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of a RemoteJWKS.
const (
	// DefaultJWKSRefresh is how often the set is fetched again when nothing asks for it sooner.
	DefaultJWKSRefresh = 15 * time.Minute
	// DefaultJWKSMinRefresh is the least time between two fetches: a token naming an unknown kid
	// causes at most one fetch per this interval, and a failed fetch is retried after it.
	DefaultJWKSMinRefresh = 30 * time.Second
	// DefaultJWKSFetchTimeout bounds one fetch.
	DefaultJWKSFetchTimeout = 5 * time.Second
)

// RemoteJWKS keeps the JWK Set an identity provider publishes (Auth0, Keycloak, Okta, Cognito, ...).
// It fetches the set when it is made, again every refresh interval, and when a token names a kid it
// does not hold (at most once per minimum interval, so random kids cannot make it hammer the provider).
// A fetch that fails, or brings a set without one usable key, changes nothing: the last good keys keep
// verifying tokens until the provider answers again. It is safe for concurrent use; Close stops it.
type RemoteJWKS struct {
	url         string
	client      *http.Client
	refresh     time.Duration
	minInterval time.Duration
	log         *slog.Logger

	keys      atomic.Pointer[KeySet]
	fetchMu   sync.Mutex // one fetch at a time
	lastFetch time.Time  // guarded by fetchMu: the last attempt, successful or not
	fetches   atomic.Int64

	stop chan struct{}
	done chan struct{}
}

// RemoteOption configures a RemoteJWKS.
type RemoteOption func(*RemoteJWKS)

// WithHTTPClient fetches with c (its TLS roots, proxy and timeout). Default: a client with the system
// roots and DefaultJWKSFetchTimeout.
func WithHTTPClient(c *http.Client) RemoteOption { return func(r *RemoteJWKS) { r.client = c } }

// WithRefresh sets how often the set is fetched again. Default DefaultJWKSRefresh.
func WithRefresh(d time.Duration) RemoteOption { return func(r *RemoteJWKS) { r.refresh = d } }

// WithMinRefresh sets the least time between two fetches (never more than the refresh interval).
// Default DefaultJWKSMinRefresh.
func WithMinRefresh(d time.Duration) RemoteOption { return func(r *RemoteJWKS) { r.minInterval = d } }

// WithLogger logs refreshes and failed fetches to l. Default slog.Default().
func WithLogger(l *slog.Logger) RemoteOption { return func(r *RemoteJWKS) { r.log = l } }

// NewRemoteJWKS fetches the JWK Set at rawURL and keeps it fresh until Close. The URL must be https,
// or http on a loopback address (a provider on the same machine): keys fetched in clear over a network
// could be anyone's. Without a first good fetch it returns an error: a gateway must not start unable to
// verify anyone.
func NewRemoteJWKS(ctx context.Context, rawURL string, opts ...RemoteOption) (*RemoteJWKS, error) {
	if err := checkJWKSURL(rawURL); err != nil {
		return nil, err
	}
	r := &RemoteJWKS{url: rawURL, refresh: DefaultJWKSRefresh, minInterval: DefaultJWKSMinRefresh,
		log: slog.Default(), stop: make(chan struct{}), done: make(chan struct{})}
	for _, o := range opts {
		o(r)
	}
	if r.client == nil {
		r.client = &http.Client{Timeout: DefaultJWKSFetchTimeout}
	}
	if r.refresh <= 0 || r.minInterval <= 0 {
		return nil, fmt.Errorf("jwks: refresh %s and minimum interval %s must be positive", r.refresh, r.minInterval)
	}
	r.minInterval = min(r.minInterval, r.refresh)
	r.fetchMu.Lock()
	err := r.fetch(ctx)
	r.fetchMu.Unlock()
	if err != nil {
		return nil, err
	}
	go r.run()
	return r, nil
}

func checkJWKSURL(rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("jwks url: %w", err)
	}
	switch {
	case u.Host == "":
		return fmt.Errorf("jwks url %q has no host", rawURL)
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && isLoopback(u.Hostname()):
		return nil
	}
	return fmt.Errorf("jwks url %q: https only (http on a loopback address)", rawURL)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Close stops the refreshes. The keys stay usable.
func (r *RemoteJWKS) Close() {
	select {
	case <-r.stop:
	default:
		close(r.stop)
	}
	<-r.done
}

// Keys returns the keys held now.
func (r *RemoteJWKS) Keys() []PublicKey { return r.keys.Load().Keys() }

// Fetches returns how many fetches were attempted, the first included.
func (r *RemoteJWKS) Fetches() int64 { return r.fetches.Load() }

// run refreshes on schedule, sooner (after the minimum interval) while fetches fail.
func (r *RemoteJWKS) run() {
	defer close(r.done)
	wait := r.refresh
	for {
		select {
		case <-r.stop:
			return
		case <-time.After(wait):
		}
		wait = r.refresh
		if err := r.refreshNow(); err != nil {
			wait = r.minInterval
		}
	}
}

// refreshNow fetches unless a fetch was attempted within the minimum interval (then it only waits for
// one in flight).
func (r *RemoteJWKS) refreshNow() error {
	r.fetchMu.Lock()
	defer r.fetchMu.Unlock()
	if time.Since(r.lastFetch) < r.minInterval {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-r.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	return r.fetch(ctx)
}

// fetch reads the set and, when it is good, replaces the keys. fetchMu must be held.
func (r *RemoteJWKS) fetch(ctx context.Context) error {
	r.lastFetch = time.Now()
	r.fetches.Add(1)
	ks, err := r.get(ctx)
	if err != nil {
		err = fmt.Errorf("jwks %s: %w", r.url, err)
		if old := r.keys.Load(); old != nil {
			r.log.Warn("jwks refresh failed, keeping the last good keys", "err", err, "keys", old.Len())
		}
		return err
	}
	if old := r.keys.Swap(ks); old != nil && !sameKIDs(old, ks) {
		r.log.Info("jwks keys changed", "url", r.url, "keys", ks.Len())
	}
	return nil
}

func (r *RemoteJWKS) get(ctx context.Context) (*KeySet, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %s", resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxKeyFile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxKeyFile {
		return nil, fmt.Errorf("larger than %d bytes", maxKeyFile)
	}
	return ParseJWKS(data)
}

func sameKIDs(a, b *KeySet) bool {
	if a.Len() != b.Len() {
		return false
	}
	for kid := range a.byKID {
		if !b.hasKID(kid) {
			return false
		}
	}
	return true
}

// lookup finds the key for a token, fetching the set first when the token names a kid it does not
// hold (rate-limited by the minimum interval).
func (r *RemoteJWKS) lookup(alg, kid string) (any, error) {
	if kid != "" && !r.keys.Load().hasKID(kid) {
		if err := r.refreshNow(); err != nil && !errors.Is(err, context.Canceled) {
			return nil, fmt.Errorf("kid %q unknown, and the key set could not be refreshed", kid)
		}
	}
	return r.keys.Load().lookup(alg, kid)
}

// has reports true for every asymmetric algorithm: the next rotation may bring any of them.
func (r *RemoteJWKS) has(string) bool { return true }
