package cli

import "github.com/spf13/cobra"

// addClientCommands adds the user commands (submit, watch, jobs, cancel, history, library).
func addClientCommands(root *cobra.Command) {}
