// Package cli is the jobwire command: one binary with a subcommand per service (dev, gateway, worker,
// projector, mirror), operator commands (admin, token, env) and user commands (submit, watch, jobs, ...).
package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/jobwire/jobwire/services/internal/config"
)

// ExitError carries a process exit code.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// Main runs the command line and returns the process exit code.
func Main(args []string) int {
	root := NewRoot()
	root.SetArgs(args)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	fmt.Fprintln(os.Stderr, "jobwire:", err)
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	return 1
}

// NewRoot builds the command tree.
func NewRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "jobwire",
		Short:         "Background jobs on NATS JetStream with live progress over SSE",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		newDevCmd(), newGatewayCmd(), newWorkerCmd(), newProjectorCmd(), newMirrorCmd(),
		newAdminCmd(), newTokenCmd(), newEnvCmd(),
	)
	addClientCommands(root)
	return root
}

func newEnvCmd() *cobra.Command {
	var markdown bool
	cmd := &cobra.Command{
		Use:   "env",
		Short: "List the environment variables jobwire reads, with defaults",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			w := cmd.OutOrStdout()
			if markdown {
				fmt.Fprint(w, config.MarkdownTable())
				return nil
			}
			for _, v := range config.Vars {
				fmt.Fprintf(w, "%-30s %-24s %s (%s)\n", v.Name, orDash(v.Default), v.Help, v.Services)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&markdown, "markdown", false, "print the README's table")
	return cmd
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// newLogger builds the process logger from JOBWIRE_LOG_LEVEL and JOBWIRE_LOG_FORMAT.
func newLogger(env *config.Env, defaultFormat string) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(env.String("JOBWIRE_LOG_LEVEL"))); err != nil {
		level = slog.LevelInfo
	}
	format := defaultFormat
	if v, ok := os.LookupEnv("JOBWIRE_LOG_FORMAT"); ok && v != "" {
		format = strings.ToLower(v)
	}
	opts := &slog.HandlerOptions{Level: level}
	if format == "text" {
		return slog.New(slog.NewTextHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, opts))
}
