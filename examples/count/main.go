// Command count is a jobwire worker for the job type demo.count, built on jobwire's public worker SDK
// the way a team builds its own: one typed handler, one Register call, configured by the same
// environment variables as `jobwire worker` (NATS_URL, JOBWIRE_WORKER_*).
//
//	NATS_URL=nats://127.0.0.1:4222 go run .
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/jobwire/jobwire/worker"
)

// Input is what a demo.count job takes; the tags make its JSON Schema, which the gateway checks.
type Input struct {
	N            int  `json:"n" jsonschema:"minimum=1,maximum=100000,description=how far to count"`
	DelayMs      int  `json:"delayMs,omitempty" jsonschema:"minimum=0,maximum=60000,description=pause before each step in milliseconds"`
	FailAttempts int  `json:"failAttempts,omitempty" jsonschema:"minimum=0,maximum=10,description=fail this many attempts first"`
	RetryAfterMs int  `json:"retryAfterMs,omitempty" jsonschema:"minimum=0,maximum=600000,description=after a failed attempt retry no sooner than this"`
	Permanent    bool `json:"permanent,omitempty" jsonschema:"description=fail at once and for good"`
}

// Result is what a finished (or cancelled) demo.count job reports.
type Result struct {
	Count int `json:"count"`
}

// Count is the job type.
var Count = worker.Type[Input, Result]{
	Name:        "demo.count",
	Description: "Counts to n, one progress step at a time.",
	Handle:      count,
}

func count(ctx context.Context, job *worker.Job[Input], progress worker.Progress) (Result, error) {
	in := job.Input
	if in.Permanent {
		return Result{}, worker.Permanent("demo_permanent", errors.New("asked to fail for good"))
	}
	if job.Attempt <= in.FailAttempts {
		err := fmt.Errorf("attempt %d fails, as asked (failAttempts %d)", job.Attempt, in.FailAttempts)
		if in.RetryAfterMs > 0 {
			return Result{}, worker.RetryAfter(time.Duration(in.RetryAfterMs)*time.Millisecond, err)
		}
		return Result{}, err
	}
	for i := 1; i <= in.N; i++ {
		select {
		case <-ctx.Done():
			return Result{Count: i - 1}, ctx.Err() // cancelled: the count so far is kept
		case <-time.After(time.Duration(in.DelayMs) * time.Millisecond):
		}
		progress.Report(i, in.N, fmt.Sprintf("Counted %d of %d", i, in.N))
	}
	return Result{Count: in.N}, nil
}

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	if err := run(log); err != nil {
		log.Error("demo.count worker", "err", err)
		os.Exit(1)
	}
}

func run(log *slog.Logger) error {
	cfg, err := worker.ConfigFromEnv()
	if err != nil {
		return err
	}
	cfg.Logger = log
	conn := worker.ConnectOptionsFromEnv("demo-count")
	conn.Logger = log
	nc, err := worker.Connect(conn)
	if err != nil {
		return err
	}
	defer nc.Drain()
	w, err := worker.New(nc, cfg)
	if err != nil {
		return err
	}
	if err := w.Register(Count); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := w.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	stopCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace+5*time.Second)
	defer cancel()
	return w.Stop(stopCtx)
}
