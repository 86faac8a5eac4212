"""A Python process that is the parent of another process's trace.

Usage: parent_span.py COMMAND [ARG...]

Opens a root span named ``python-parent`` with the OpenTelemetry Python SDK,
runs COMMAND while that span is current with TRACEPARENT (and TRACESTATE, if
the span has one) in its environment -- W3C Trace Context, the way the
OpenTelemetry "environment variables as context propagation carriers"
convention passes a trace to a child process -- waits for it, ends the span,
exports it over OTLP/HTTP (protobuf) to OTEL_EXPORTER_OTLP_ENDPOINT (the
exporter appends /v1/traces), and prints one JSON line as the LAST line of
stdout:

    {"trace_id": "<32 hex>", "span_id": "<16 hex>", "child_exit_code": 0}

COMMAND inherits stdout, so its output comes before that line. The span's
service.name is "python-parent" unless OTEL_SERVICE_NAME says otherwise. Exit
code: COMMAND's if it failed (the span then has status ERROR), 2 on misuse.
"""

import json
import os
import subprocess
import sys

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.trace.status import Status, StatusCode

SPAN_NAME = "python-parent"


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    if not os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        print("parent_span.py: set OTEL_EXPORTER_OTLP_ENDPOINT to the collector's OTLP/HTTP endpoint",
              file=sys.stderr)
        return 2

    attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: "python-parent"}
    provider = TracerProvider(resource=Resource.create(attributes))
    # Simple, not batch: the span is exported when it ends, and the flush
    # below has nothing left to race with.
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter()))
    tracer = provider.get_tracer("flowtrace.tests.parent_span")

    with tracer.start_as_current_span(SPAN_NAME, end_on_exit=True) as span:
        carrier = {}
        TraceContextTextMapPropagator().inject(carrier)
        child_env = dict(os.environ)
        child_env.pop("TRACESTATE", None)
        child_env["TRACEPARENT"] = carrier["traceparent"]
        if carrier.get("tracestate"):
            child_env["TRACESTATE"] = carrier["tracestate"]
        span.set_attribute("process.command_args", argv[1:])

        try:
            completed = subprocess.run(argv[1:], env=child_env, check=False)
            code = completed.returncode
        except OSError as e:
            print(f"parent_span.py: cannot run {argv[1]!r}: {e}", file=sys.stderr)
            code = 127
        span.set_attribute("process.exit.code", code)
        if code != 0:
            span.set_status(Status(StatusCode.ERROR, f"child exited with {code}"))
        ids = span.get_span_context()

    flushed = provider.force_flush(timeout_millis=10_000)
    provider.shutdown()
    if not flushed:
        print("parent_span.py: force_flush timed out", file=sys.stderr)

    sys.stdout.flush()
    print(json.dumps({
        "trace_id": trace.format_trace_id(ids.trace_id),
        "span_id": trace.format_span_id(ids.span_id),
        "child_exit_code": code,
    }), flush=True)
    if code != 0:
        return code
    return 0 if flushed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
