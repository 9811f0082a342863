// Package conformance holds the worker conformance suite: the scenarios of docs/protocol.md run
// against a worker implementation given as a command that serves demo.count (see examples/count),
// with a real NATS server, projector and gateway, the worker as its own OS process. By default it
// runs examples/count; JOBWIRE_CONFORMANCE_WORKER="<command> [args]" runs another implementation
// (a Node worker, for instance) through the same scenarios:
//
//	JOBWIRE_CONFORMANCE_WORKER="node examples/count-ts/dist/main.js" go test ./internal/conformance/
//
// TestTypeScriptWorkerConformance runs the same scenarios against examples/count-ts (node
// examples/count-ts/dist/main.js) when node and that build are present, and skips otherwise; with
// JOBWIRE_REQUIRE_NODE=1 (CI, after `npm ci && npm run build`) their absence is a failure.
//
// The worker is configured by the environment the Go SDK reads (NATS_URL, JOBWIRE_WORKER_*), which
// every implementation is expected to honour.
package conformance
