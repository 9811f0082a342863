package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/streams"
)

// presence keeps this worker's entries in JOB_TYPES: at start, each type's registration and schema
// version; while it runs, one worker entry per type, written with a per-message TTL and renewed at a
// third of it. Stop removes them at once; a worker that dies stops renewing them and they expire, so
// gateways (which watch the bucket) see the type's workers come and go without polling anyone.
type presence struct {
	w    *Worker
	kv   jetstream.KeyValue
	stop func()
	done chan struct{}
	once sync.Once
}

func newPresence(w *Worker, kv jetstream.KeyValue) *presence {
	return &presence{w: w, kv: kv, stop: func() {}}
}

// start registers every type and starts renewing the worker entries.
func (p *presence) start(ctx context.Context) error {
	now := time.Now().UTC()
	for _, r := range p.w.runners {
		if err := p.register(ctx, r.def, now); err != nil {
			return fmt.Errorf("worker: register %s: %w", r.def.name, err)
		}
	}
	if err := p.renew(ctx, now); err != nil {
		return fmt.Errorf("worker: announce in %s: %w", streams.BucketJobTypes, err)
	}
	renewCtx, cancel := context.WithCancel(context.Background())
	p.done = make(chan struct{})
	p.stop = func() {
		p.once.Do(func() {
			cancel()
			<-p.done
			p.remove()
		})
	}
	go p.loop(renewCtx, now)
	return nil
}

// register writes the type's schema version (content-addressed, written once) and its registration.
func (p *presence) register(ctx context.Context, d *definition, now time.Time) error {
	if _, err := p.kv.Create(ctx, streams.SchemaKey(d.name, d.schema.Hash), d.schemaDoc); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
		return fmt.Errorf("store schema: %w", err)
	}
	o := d.options
	entry := streams.TypeEntry{V: streams.RegistryVersion, Name: d.name, Description: d.description,
		Schema: d.schemaDoc, SchemaHash: d.schema.Hash, NameField: d.nameField, RegisteredAt: now, RegisteredBy: p.w.cfg.Name,
		Options: api.JobTypeOptions{MaxInFlight: o.MaxInFlight, MaxAttempts: o.MaxAttempts, Timeout: api.Duration(o.Timeout),
			AckWait: api.Duration(o.AckWait), BackoffBase: api.Duration(o.BackoffBase), BackoffMax: api.Duration(o.BackoffMax)}}
	data, err := json.Marshal(entry)
	if err != nil {
		return fmt.Errorf("encode registration: %w", err)
	}
	if _, err := p.kv.Put(ctx, streams.TypeKey(d.name), data); err != nil {
		return fmt.Errorf("store registration: %w", err)
	}
	return nil
}

// renew writes every worker entry with a TTL of PresenceTTL (KV's Put cannot set one).
func (p *presence) renew(ctx context.Context, startedAt time.Time) error {
	for _, r := range p.w.runners {
		entry := streams.WorkerEntry{V: streams.RegistryVersion, ID: p.w.id, Type: r.def.name, Name: p.w.cfg.Name,
			SchemaHash: r.def.schema.Hash, Concurrency: r.opts.Concurrency, SDK: SDK, StartedAt: startedAt}
		data, err := json.Marshal(entry)
		if err != nil {
			return fmt.Errorf("encode worker entry: %w", err)
		}
		m := nats.NewMsg(streams.KVSubject(streams.BucketJobTypes, streams.WorkerKey(r.def.name, p.w.id)))
		m.Data = data
		if _, err := p.w.js.PublishMsg(ctx, m, jetstream.WithMsgTTL(p.w.cfg.PresenceTTL)); err != nil {
			return err
		}
	}
	return nil
}

func (p *presence) loop(ctx context.Context, startedAt time.Time) {
	defer close(p.done)
	t := time.NewTicker(p.w.cfg.PresenceTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			renewCtx, cancel := context.WithTimeout(ctx, p.w.cfg.PresenceTTL/3)
			if err := p.renew(renewCtx, startedAt); err != nil && ctx.Err() == nil {
				p.w.log.Warn("renew worker entries", "err", err)
			}
			cancel()
		}
	}
}

// remove purges the worker entries, leaving markers that watchers see and that expire by themselves.
func (p *presence) remove() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, r := range p.w.runners {
		if err := p.kv.Purge(ctx, streams.WorkerKey(r.def.name, p.w.id), jetstream.PurgeTTL(time.Minute)); err != nil {
			p.w.log.Warn("remove worker entry", "type", r.def.name, "err", err)
		}
	}
}
