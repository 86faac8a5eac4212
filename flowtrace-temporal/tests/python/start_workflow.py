"""A Python Temporal client with the temporalio package's OpenTelemetry
TracingInterceptor: starts FanOutWorkflow on the Rust workers and waits for it.

    start_workflow.py ADDRESS TASK_QUEUE WORKFLOW_ID WORD...

Exports its spans over OTLP/HTTP to OTEL_EXPORTER_OTLP_ENDPOINT and prints one
JSON line: the StartWorkflow span's trace and span ids and the workflow result.
"""

import asyncio
import json
import os
import sys

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.client import Client
from temporalio.contrib.opentelemetry import TracingInterceptor


async def main(address: str, task_queue: str, workflow_id: str, words: list[str]) -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": "python-client"}))
    seen = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter()))
    provider.add_span_processor(SimpleSpanProcessor(seen))
    trace.set_tracer_provider(provider)

    client = await Client.connect(address, interceptors=[TracingInterceptor()])
    result = await client.execute_workflow(
        "FanOutWorkflow", {"words": words}, id=workflow_id, task_queue=task_queue
    )
    provider.force_flush()
    start = next(s for s in seen.get_finished_spans() if s.name == "StartWorkflow:FanOutWorkflow")
    print(
        json.dumps(
            {
                "trace_id": format(start.context.trace_id, "032x"),
                "span_id": format(start.context.span_id, "016x"),
                "result": result,
            }
        )
    )
    provider.shutdown()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]))
    # The temporalio bridge's Rust threads can abort the interpreter while it
    # finalizes ("PyGILState_Release ... finalizing"); everything is flushed
    # by now, so leave without finalizing.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
