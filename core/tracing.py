"""Traces: OpenTelemetry, configured only by the standard ``OTEL_*`` variables.

``configure(service)`` is called once at the start of each process that serves (the WSGI
and ASGI applications, ``run_temporal_worker``, ``run_outbox_relay``). With
``OTEL_TRACES_EXPORTER`` unset or ``none`` (or ``OTEL_SDK_DISABLED=true``) it installs
nothing: no middleware, no database wrapper, no Temporal interceptor, and the outbox stores
no trace context. Otherwise it builds a ``TracerProvider`` the way the SDK's own
configurator does (exporters, sampler and id generator from their entry points, resource
from ``OTEL_SERVICE_NAME`` / ``OTEL_RESOURCE_ATTRIBUTES``, batching from ``OTEL_BSP_*``,
exporter settings from ``OTEL_EXPORTER_*``), and then:

* Django requests get a server span (``opentelemetry-instrumentation-django``;
  ``OTEL_PYTHON_DJANGO_EXCLUDED_URLS`` leaves out probes),
* every psycopg statement is a child span of whatever is current,
* Temporal clients (hence workers) carry temporalio's ``TracingInterceptor``: a workflow
  start continues the caller's trace into the workflow and its activities,
* ``carrier()`` gives the W3C trace context that ``enqueue_start`` stores with an outbox
  row, and ``continued()`` is where the relay picks it up again, so one signup is one trace.

One deviation from the SDK, on purpose: ``otlp`` with no ``OTEL_EXPORTER_OTLP_*PROTOCOL``
means OTLP over HTTP (the specification's default, and the exporter installed here), where
the Python SDK alone would look for the gRPC exporter.
"""

import contextlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured

_OTLP_PROTOCOL_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")


@dataclass(frozen=True)
class _Installed:
    provider: Any  # opentelemetry.sdk.trace.TracerProvider
    tracer: Any
    interceptor: Any  # temporalio.contrib.opentelemetry.TracingInterceptor
    owned: bool  # made by configure() (flushed by shutdown()), not handed to install()


_installed: _Installed | None = None


def exporter_names(environ: Mapping[str, str] = os.environ) -> list[str]:
    """The span exporters ``environ`` asks for, as entry-point names; [] when tracing is off."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    raw = environ.get("OTEL_TRACES_EXPORTER", "").strip()
    names = [name.strip() for name in raw.split(",") if name.strip()]
    names = [name for name in names if name.lower() != "none"]
    if not any(environ.get(variable) for variable in _OTLP_PROTOCOL_VARIABLES):
        names = ["otlp_proto_http" if name == "otlp" else name for name in names]
    return names


def build_provider(names: list[str], *, service: str):
    """A ``TracerProvider`` exporting to ``names`` in batches, configured by ``OTEL_*``.
    Raises ``ImproperlyConfigured`` naming the variable when an exporter cannot be had."""
    from opentelemetry.sdk._configuration import (
        _get_exporter_entry_point,
        _get_id_generator,
        _get_sampler,
        _import_exporters,
        _import_id_generator,
        _import_sampler,
    )
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    setting = f"OTEL_TRACES_EXPORTER={os.environ.get('OTEL_TRACES_EXPORTER', '')!r}"
    try:
        # The SDK's own resolution of otlp / otlp_proto_grpc against the protocol variables.
        names = [_get_exporter_entry_point(name, "traces") for name in names]
        exporters, _, _ = _import_exporters(names, [], [])
    except (RuntimeError, ImportError) as exc:
        raise ImproperlyConfigured(
            f"{setting}: {exc}. Installed here: console, otlp (OTLP over HTTP, "
            "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf)."
        ) from exc
    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        # Neither OTEL_SERVICE_NAME nor OTEL_RESOURCE_ATTRIBUTES named the service: say
        # which of the project's processes sent the span.
        resource = resource.merge(Resource({SERVICE_NAME: service}))
    provider = TracerProvider(
        resource=resource,
        sampler=_import_sampler(_get_sampler()),
        id_generator=_import_id_generator(_get_id_generator()),
    )
    for exporter in exporters.values():
        provider.add_span_processor(BatchSpanProcessor(exporter()))
    return provider


def configure(service: str) -> bool:
    """Install tracing as ``OTEL_*`` asks, once per process; whether it is on. ``service``
    is the ``service.name`` used when the environment names none."""
    if _installed is not None:
        return True
    names = exporter_names()
    if not names:
        return False
    from opentelemetry import trace

    provider = build_provider(names, service=service)
    trace.set_tracer_provider(provider)
    install(provider, owned=True)
    return True


def install(provider, *, owned: bool = False) -> None:
    """Trace requests, database statements and Temporal calls to ``provider``. ``configure``
    calls it; tests call it with a provider of their own (and ``uninstall`` after)."""
    global _installed
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    from temporalio.contrib.opentelemetry import TracingInterceptor

    DjangoInstrumentor().instrument(tracer_provider=provider, response_hook=name_server_span)
    PsycopgInstrumentor().instrument(tracer_provider=provider)
    _installed = _Installed(
        provider=provider,
        tracer=provider.get_tracer("tenantflow"),
        interceptor=TracingInterceptor(provider.get_tracer("temporalio")),
        owned=owned,
    )


def name_server_span(span, request, response) -> None:
    """Name a request's span ``{method} {http.route}``, as OpenTelemetry's HTTP semantic
    conventions ask (the instrumentation names it before URL resolution, from the default
    URL conf, which does not hold django-tenants' per-host ones). A request that matched no
    route keeps ``{method}``; a method outside the known ones is ``HTTP``."""
    from opentelemetry.util.http import sanitize_method

    method = sanitize_method(request.method.strip())
    route = getattr(getattr(request, "resolver_match", None), "route", None)
    if span.is_recording() and method != "_OTHER" and route:
        span.update_name(f"{method} {route}")


def uninstall() -> None:
    """Undo ``install`` (for tests): new connections, middleware chains and Temporal clients
    are untraced again; ones made meanwhile keep their wrappers."""
    global _installed
    if _installed is None:
        return
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor

    DjangoInstrumentor().uninstrument()
    PsycopgInstrumentor().uninstrument()
    _installed = None


def shutdown() -> None:
    """Export what is still batched. For exits that skip ``atexit`` (``os._exit``)."""
    if _installed is not None and _installed.owned:
        _installed.provider.shutdown()


def enabled() -> bool:
    return _installed is not None


def temporal_interceptors() -> list:
    """The interceptors a Temporal client needs (workers made from it inherit them)."""
    return [_installed.interceptor] if _installed is not None else []


def _propagator():
    from opentelemetry.baggage.propagation import W3CBaggagePropagator
    from opentelemetry.propagators.composite import CompositePropagator
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    # W3C trace context and baggage, as temporalio's interceptor uses: both ends are ours.
    return CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])


def carrier() -> dict[str, str]:
    """The current trace context as W3C headers (``traceparent``…); {} when tracing is off
    or no span is current."""
    if _installed is None:
        return {}
    headers: dict[str, str] = {}
    _propagator().inject(headers)
    return headers


@contextlib.contextmanager
def continued(
    headers: Mapping[str, str] | None, name: str, attributes: Mapping[str, Any] | None = None
) -> Iterator[None]:
    """A span ``name`` that continues the trace in ``headers`` (a ``carrier()`` stored
    earlier; a new trace when empty), current in the block. Nothing when tracing is off."""
    if _installed is None:
        yield
        return
    from opentelemetry import context as otel_context

    # Extracted onto an empty context, not the current one, so that nothing current here
    # (the relay's suppressed instrumentation) leaks into the continued trace.
    parent = _propagator().extract(dict(headers or {}), context=otel_context.Context())
    token = otel_context.attach(parent)
    try:
        with _installed.tracer.start_as_current_span(name, attributes=attributes):
            yield
    finally:
        otel_context.detach(token)


@contextlib.contextmanager
def span(name: str, attributes: Mapping[str, Any] | None = None) -> Iterator[None]:
    """A span ``name``, child of the current one, current in the block. Nothing when
    tracing is off."""
    if _installed is None:
        yield
        return
    with _installed.tracer.start_as_current_span(name, attributes=attributes):
        yield


@contextlib.contextmanager
def untraced() -> Iterator[None]:
    """No spans from instrumentation in the block: background housekeeping (the relay's
    polling, metrics scrapes) would otherwise make a root trace of every statement."""
    if _installed is None:
        yield
        return
    from opentelemetry.instrumentation.utils import suppress_instrumentation

    with suppress_instrumentation():
        yield
