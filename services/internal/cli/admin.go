package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/jobwire/jobwire/services/internal/auth"
	"github.com/jobwire/jobwire/services/internal/projector"
)

func newAdminCmd() *cobra.Command {
	admin := &cobra.Command{Use: "admin", Short: "Operator commands against NATS_URL"}
	var bucket string
	var keep, apply, asJSON bool
	rebuild := &cobra.Command{
		Use:   "rebuild",
		Short: "Replay JOB_EVENTS into a fresh bucket, report every difference with JOB_STATE, and with --apply repair them",
		Long: "Replays JOB_EVENTS (up to its last sequence at the start) into a fresh KV bucket and compares it\n" +
			"with the live JOB_STATE. Exits 0 when they match, 3 when they differ. With --apply it writes each\n" +
			"difference back to JOB_STATE (compare-and-swap: an entry the projector changed meanwhile is left),\n" +
			"safe while the projector runs; then it exits 0 when every difference was repaired.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p := newProcess("admin", "text")
			connectCtx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
			defer cancel()
			if err := p.connect(connectCtx, "jobwire-admin", ""); err != nil {
				return err
			}
			defer p.close()
			rep, err := projector.Rebuild(cmd.Context(), p.js, projector.RebuildOptions{
				Bucket: bucket, Retention: p.topo.StateRetention, Keep: keep, Apply: apply})
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				_ = enc.Encode(rep)
			} else {
				fmt.Fprintf(w, "replayed %d events of %d jobs into %s in %s\n", rep.Events, rep.Jobs, rep.Bucket, rep.Duration.Round(time.Millisecond))
				fmt.Fprintf(w, "skipped %d (changed during the replay, or expired after retention)\n", rep.Skipped)
				for _, d := range rep.Diffs {
					fmt.Fprintf(w, "%s %s\n  live:    %s\n  rebuilt: %s\n", d.Kind, d.Key, d.Live, d.Rebuilt)
					if apply && !d.Repaired {
						fmt.Fprintln(w, "  not repaired: the live entry changed during the rebuild (it is newer)")
					}
				}
				if len(rep.Diffs) == 0 {
					fmt.Fprintln(w, "JOB_STATE matches the replay")
				} else if apply {
					fmt.Fprintf(w, "repaired %d of %d differences in JOB_STATE\n", rep.Repaired, len(rep.Diffs))
				}
			}
			if apply && rep.Repaired < len(rep.Diffs) {
				return &ExitError{Code: 3, Err: fmt.Errorf("%d of %d differences not repaired", len(rep.Diffs)-rep.Repaired, len(rep.Diffs))}
			}
			if !apply && len(rep.Diffs) > 0 {
				return &ExitError{Code: 3, Err: fmt.Errorf("%d differences", len(rep.Diffs))}
			}
			return nil
		},
	}
	rebuild.Flags().StringVar(&bucket, "bucket", "JOB_STATE_REBUILD", "name of the fresh bucket")
	rebuild.Flags().BoolVar(&keep, "keep", false, "keep the fresh bucket for inspection")
	rebuild.Flags().BoolVar(&apply, "apply", false, "write every difference back to JOB_STATE")
	rebuild.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	ensure := &cobra.Command{
		Use:   "ensure",
		Short: "Create or update every stream and bucket (for deployments whose services run with JOBWIRE_TOPOLOGY=check)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p := newProcess("admin", "text")
			p.topoMode = "ensure"
			ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
			defer cancel()
			if err := p.connect(ctx, "jobwire-admin", ""); err != nil {
				return err
			}
			defer p.close()
			_, err := fmt.Fprintln(cmd.OutOrStdout(), "topology ensured")
			return err
		},
	}
	admin.AddCommand(rebuild, ensure)
	return admin
}

func newTokenCmd() *cobra.Command {
	var user, scope, job string
	var ttl time.Duration
	var operator bool
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Print a token signed with JOBWIRE_JWT_SECRET",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p := newProcess("token", "text")
			secret := p.env.String("JOBWIRE_JWT_SECRET")
			if len(secret) < 32 {
				return fmt.Errorf("JOBWIRE_JWT_SECRET must be set to at least 32 bytes")
			}
			if scope != "" && scope != auth.ScopeStream {
				return fmt.Errorf("--scope must be empty or %q", auth.ScopeStream)
			}
			if limit := p.env.Duration("JOBWIRE_JWT_MAX_LIFETIME"); limit > 0 && ttl > limit {
				return fmt.Errorf("--ttl %s is longer than JOBWIRE_JWT_MAX_LIFETIME (%s): the gateway would refuse the token", ttl, limit)
			}
			var roles []string
			if operator {
				roles = append(roles, p.env.String("JOBWIRE_OPERATOR_ROLE"))
			}
			tok, err := auth.NewSigner([]byte(secret), p.env.String("JOBWIRE_JWT_ISSUER"), auth.SignAudience(p.env.String("JOBWIRE_JWT_AUDIENCE")),
				auth.SignRolesClaim(p.env.String("JOBWIRE_JWT_ROLES_CLAIM"))).Sign(user, ttl, scope, job, roles...)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(os.Stdout, tok)
			return err
		},
	}
	cmd.Flags().StringVar(&user, "user", "", "user id (the token's sub)")
	cmd.Flags().DurationVar(&ttl, "ttl", time.Hour, "lifetime")
	cmd.Flags().StringVar(&scope, "scope", "", `"stream" for a token that only opens SSE streams`)
	cmd.Flags().StringVar(&job, "job", "", "limit a stream token to one job id")
	cmd.Flags().BoolVar(&operator, "operator", false, "give the token the operator role (JOBWIRE_OPERATOR_ROLE in JOBWIRE_JWT_ROLES_CLAIM)")
	_ = cmd.MarkFlagRequired("user")
	return cmd
}
