// Command jobwire runs jobwire's services (dev, gateway, worker, projector, mirror) and its operator and
// user commands. `jobwire --help` lists them.
package main

import (
	"os"

	"github.com/jobwire/jobwire/services/internal/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:])) }
