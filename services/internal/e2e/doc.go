// Package e2e holds jobwire's end-to-end tests: the whole data path in one process and as separate
// OS processes (gateway, worker, projector, dev) against a real nats-server, restarts included.
package e2e
