// Package testkit is the shared kit of jobwire's tests and load tools: child processes with captured
// output, a real redis-server, free ports.
package testkit
