// Package deploytest holds the tests of the deployment files in deployments/ (NATS server configs,
// Dockerfile, docker compose, Kubernetes). They build the jobwire binary the way the Dockerfile does and
// nats-server from the Go module, run the NATS configs as real servers (one node, and a 3-node cluster
// with faults), run every service as its own process with its own NATS user, and check the manifests
// against the binary: subcommands, environment variables (config.Vars), ports, probes and grace periods.
//
// The package has no code of its own; everything is in its _test.go files.
package deploytest
