package telemetry_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	"go.opentelemetry.io/otel"

	"github.com/jobwire/jobwire/services/internal/telemetry"
	"github.com/jobwire/jobwire/services/internal/testkit"
)

func TestEnabledFollowsTheStandardVariables(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want bool
	}{
		{map[string]string{}, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": ""}, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, true},
		{map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, true},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SDK_DISABLED": "TRUE"}, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SDK_DISABLED": "false"}, true},
	} {
		for _, name := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_SDK_DISABLED"} {
			t.Setenv(name, tc.env[name])
		}
		if got := telemetry.Enabled(); got != tc.want {
			t.Errorf("Enabled() with %v = %v, want %v", tc.env, got, tc.want)
		}
	}
}

func TestStartWithoutAnEndpointInstallsNothing(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	before := otel.GetTracerProvider()
	stop, err := telemetry.Start(context.Background(), "jobwire-test")
	if err != nil {
		t.Fatal(err)
	}
	if otel.GetTracerProvider() != before {
		t.Error("Start installed a TracerProvider without an endpoint")
	}
	if err := stop(context.Background()); err != nil {
		t.Error(err)
	}
}

// With an endpoint, spans go to it over OTLP/HTTP (protobuf), named by service and instance, and
// stop flushes what is left.
func TestStartExportsToTheEndpoint(t *testing.T) {
	srv := testkit.StartOTLPReceiver(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
	before := otel.GetTracerProvider()
	t.Cleanup(func() { otel.SetTracerProvider(before) })
	stop, err := telemetry.Start(context.Background(), "jobwire-test")
	if err != nil {
		t.Fatal(err)
	}
	_, span := otel.Tracer("test").Start(context.Background(), "one")
	span.End()
	if err := stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	got := srv.Spans()
	if len(got) != 1 || got[0].Name != "one" || got[0].Service != "jobwire-test" || got[0].Instance != fmt.Sprintf("%s-%d", host, os.Getpid()) {
		t.Errorf("exported %+v, want span one of jobwire-test, instance %s-%d", got, host, os.Getpid())
	}
}
