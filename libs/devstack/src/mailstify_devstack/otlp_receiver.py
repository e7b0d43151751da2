"""A minimal OTLP/HTTP trace receiver for tests: services started with `OTEL_EXPORTER_OTLP_ENDPOINT`
pointing at it export their spans here (protobuf, as the SDK's OTLP/HTTP exporter sends them), and
the test reads them back decoded, in memory, from every process at once.

    with otlp_receiver() as receiver:          # receiver.endpoint → OTEL_EXPORTER_OTLP_ENDPOINT
        ...
        spans = receiver.spans()               # list[ReceivedSpan]
"""

from __future__ import annotations

import contextlib
import gzip
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from .net import LOOPBACK

TRACES_PATH = "/v1/traces"
_KINDS = {0: "unspecified", 1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}


@dataclass(frozen=True)
class ReceivedSpan:
    service: str
    name: str
    kind: str
    trace_id: str  # 32 hex digits, as logs and the timeline write it
    span_id: str
    parent_span_id: str | None
    attributes: dict[str, Any]
    links: list[tuple[str, str]]  # (trace_id, span_id)
    start_ns: int = 0
    end_ns: int = 0
    resource: dict[str, Any] = field(default_factory=dict)


def any_value(value: AnyValue) -> Any:
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, which)


def decode(body: bytes) -> list[ReceivedSpan]:
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    spans = []
    for resource_spans in request.resource_spans:
        resource = {kv.key: any_value(kv.value) for kv in resource_spans.resource.attributes}
        service = str(resource.get("service.name", ""))
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(
                    ReceivedSpan(
                        service=service,
                        name=span.name,
                        kind=_KINDS.get(span.kind, str(span.kind)),
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex() or None,
                        attributes={kv.key: any_value(kv.value) for kv in span.attributes},
                        links=[(link.trace_id.hex(), link.span_id.hex()) for link in span.links],
                        start_ns=span.start_time_unix_nano,
                        end_ns=span.end_time_unix_nano,
                        resource=resource,
                    )
                )
    return spans


class OtlpReceiver:
    def __init__(self, port: int):
        self.endpoint = f"http://{LOOPBACK}:{port}"
        self._spans: list[ReceivedSpan] = []
        self._lock = threading.Lock()

    def add(self, spans: list[ReceivedSpan]) -> None:
        with self._lock:
            self._spans.extend(spans)

    def spans(self) -> list[ReceivedSpan]:
        with self._lock:
            return list(self._spans)

    def trace(self, trace_id: str) -> list[ReceivedSpan]:
        return [s for s in self.spans() if s.trace_id == trace_id]


def _handler(receiver: OtlpReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            if self.path == TRACES_PATH:
                try:
                    receiver.add(decode(body))
                except Exception:  # a malformed export must not kill the receiver thread
                    self.send_response(HTTPStatus.BAD_REQUEST)
                    self.end_headers()
                    return
                reply = ExportTraceServiceResponse().SerializeToString()
            else:
                reply = b""  # metrics and logs: accepted and dropped
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def _bind(ports: range) -> ThreadingHTTPServer:
    for port in ports:
        try:
            # The handler is set once the port (part of the receiver's endpoint) is known.
            return ThreadingHTTPServer((LOOPBACK, port), BaseHTTPRequestHandler)
        except OSError:
            continue
    raise OSError(f"no free port in {ports.start}-{ports.stop - 1} for the OTLP receiver")


@contextlib.contextmanager
def otlp_receiver(ports: range | None = None) -> Iterator[OtlpReceiver]:
    """Serve on the first free port of `ports` (default: any free port) until the block ends."""
    if ports is None:
        with socket.socket() as probe:
            probe.bind((LOOPBACK, 0))
            ports = range(probe.getsockname()[1], probe.getsockname()[1] + 1)
    server = _bind(ports)
    port = server.server_address[1]
    receiver = OtlpReceiver(port)
    server.RequestHandlerClass = _handler(receiver)
    thread = threading.Thread(target=server.serve_forever, name="otlp-receiver", daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
