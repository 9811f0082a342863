// Package api is jobwire's public contract: the wire types the gateway sends and accepts, the catalogue
// of error codes, and a Go client for the REST and SSE routes (used by the CLI, the load tool and the
// tests). Nothing in here talks to NATS; the OpenAPI document in openapi.yaml describes the same routes.
package api
