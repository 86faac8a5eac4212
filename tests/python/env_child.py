"""A child process that continues its parent's trace from the environment.

Reads TRACEPARENT / TRACESTATE / BAGGAGE (the OpenTelemetry "environment
variables as context propagation carriers" convention), extracts them with
the SDK's W3C propagators, opens a span ``python-child`` under that parent
with the baggage entry ``customer`` as attribute ``shop.customer``, exports
it over OTLP/HTTP to OTEL_EXPORTER_OTLP_ENDPOINT, and prints one JSON line:

    {"trace_id": ..., "span_id": ..., "parent_span_id": ..., "env": {...}, "customer": ...}
"""

import json
import os
import sys

from opentelemetry import baggage, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator


def main():
    if not os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        print(__doc__, file=sys.stderr)
        return 2
    env = {k: os.environ[k] for k in ("TRACEPARENT", "TRACESTATE", "BAGGAGE") if k in os.environ}
    carrier = {k.lower(): v for k, v in env.items()}
    ctx = TraceContextTextMapPropagator().extract(carrier)
    ctx = W3CBaggagePropagator().extract(carrier, context=ctx)

    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: "python-child"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(timeout=10)))
    tracer = provider.get_tracer("flowtrace.tests.env_child")
    customer = baggage.get_baggage("customer", ctx)
    with tracer.start_as_current_span("python-child", context=ctx) as span:
        span.set_attribute("shop.customer", str(customer))
        sc = span.get_span_context()
        parent = span.parent
    flushed = provider.force_flush(timeout_millis=10_000)
    provider.shutdown()
    print(json.dumps({
        "trace_id": trace.format_trace_id(sc.trace_id),
        "span_id": trace.format_span_id(sc.span_id),
        "parent_span_id": trace.format_span_id(parent.span_id) if parent else "",
        "env": env,
        "customer": customer,
    }), flush=True)
    return 0 if flushed else 1


if __name__ == "__main__":
    sys.exit(main())
