"""A Python OpenTelemetry SDK peer on both sides of a flowtrace HTTP service.

Usage: http_peer.py SERVICE_URL

1. Starts an HTTP server on a free 127.0.0.1 port. Each GET is a SERVER span
   named ``python-server`` whose parent is extracted with the SDK's
   W3C TraceContext and Baggage propagators; it answers with JSON of the
   trace headers and baggage it received.
2. Opens a CLIENT span ``python-client`` under a remote parent that carries
   ``tracestate: python=t61rcWkgMzE`` (as an upstream vendor would), sets
   baggage ``customer=carol``, and GETs ``SERVICE_URL?callback=<its server>``
   with the headers the SDK injects (urllib, no instrumentation package).
3. Exports every span over OTLP/HTTP to OTEL_EXPORTER_OTLP_ENDPOINT and
   prints one JSON line as the LAST line of stdout:

    {"trace_id": ..., "client_span_id": ..., "sent": {headers}, "response": <the service's JSON>}

Every wait is bounded (10 s per request, 10 s for the flush).
"""

import json
import os
import sys
import threading
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry import baggage, context, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags, TraceState
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

TRACE_CONTEXT = TraceContextTextMapPropagator()
BAGGAGE = W3CBaggagePropagator()

provider = TracerProvider(resource=Resource.create({SERVICE_NAME: "python-peer"}))
provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(timeout=10)))
tracer = provider.get_tracer("flowtrace.tests.http_peer")


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        carrier = {k.lower(): v for k, v in self.headers.items()}
        ctx = TRACE_CONTEXT.extract(carrier)
        ctx = BAGGAGE.extract(carrier, context=ctx)
        with tracer.start_as_current_span("python-server", context=ctx, kind=SpanKind.SERVER):
            seen = {k: carrier[k] for k in ("traceparent", "tracestate", "baggage") if k in carrier}
            seen["baggage.customer"] = baggage.get_baggage("customer", ctx)
            body = json.dumps(seen).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def main(argv):
    if len(argv) != 2 or not os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        print(__doc__, file=sys.stderr)
        return 2
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    callback = "http://127.0.0.1:%d/callback" % server.server_address[1]

    ids = RandomIdGenerator()
    upstream = SpanContext(
        trace_id=ids.generate_trace_id(),
        span_id=ids.generate_span_id(),
        is_remote=True,
        trace_flags=TraceFlags(0x03),  # sampled + Level 2 random-trace-id
        trace_state=TraceState([("python", "t61rcWkgMzE")]),
    )
    ctx = trace.set_span_in_context(NonRecordingSpan(upstream))
    ctx = baggage.set_baggage("customer", "carol", context=ctx)
    token = context.attach(ctx)
    try:
        with tracer.start_as_current_span("python-client", kind=SpanKind.CLIENT) as span:
            headers = {}
            TRACE_CONTEXT.inject(headers)
            BAGGAGE.inject(headers)
            url = argv[1] + "?" + urllib.parse.urlencode({"callback": callback})
            request = urllib.request.Request(url, headers=headers)
            with urllib.request.urlopen(request, timeout=10) as response:
                answer = json.loads(response.read())
            ids_out = span.get_span_context()
    finally:
        context.detach(token)
        server.shutdown()

    flushed = provider.force_flush(timeout_millis=10_000)
    provider.shutdown()
    print(json.dumps({
        "trace_id": trace.format_trace_id(ids_out.trace_id),
        "client_span_id": trace.format_span_id(ids_out.span_id),
        "sent": headers,
        "response": answer,
    }), flush=True)
    return 0 if flushed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
