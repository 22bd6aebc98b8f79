"""Prometheus monitoring: ``GET /metrics`` (text exposition format, ``prometheus-client``).

Two processes produce metrics:
* the API-server process (the gateway middleware): requests by route/status/safety action, total
  latency and time to first token, cache hits/misses, safety rules fired, model requests in flight,
  queue depth, and sliding-window quality monitors over the last ``serve.monitor_window`` answers
  (reminder-added rate, emergency-reply rate, 👎 rate from ``Monitor.record_feedback``);
* the inference worker (serve/api.py, a spawned process): batch sizes, generated tokens, generation
  time, rows running, and the truncation rate over its last answers. It writes them with
  prometheus-client's multiprocess mode into a per-server directory (``MEDQA_METRICS_DIR``, created
  by ``prepare_metrics_dir`` before the workers start, inherited through the environment) that the
  API server reads back at each scrape (``MultiProcessCollector``).
Only the worker runs in multiprocess mode; the API server keeps plain in-process values, so nothing is
counted twice. ``serve.metrics_auth`` (default true) puts /metrics behind the API key like /info.
Metric names and what to alert on: serve/README.md (*Monitoring*); dashboard: serve/grafana/.
"""
from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
from collections import deque
from dataclasses import dataclass

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

from stages.safety.postcheck import guarded

METRICS_PATH = "/metrics"
DIR_ENV = "MEDQA_METRICS_DIR"
WINDOW_ENV = "MEDQA_MONITOR_WINDOW"
LATENCY_BUCKETS = (0.005, 0.025, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 160, 320, 600)
KNOWN_ROUTES = {"/predict": "predict", "/v1/chat/completions": "chat", "/health": "health", "/info": "info",
                "/metrics": "metrics", "/": "page", "/docs": "docs", "/openapi.json": "docs",
                "/feedback": "feedback", "/review": "review", "/shutdown": "shutdown"}


@dataclass(frozen=True)
class MonitorSettings:
    auth: bool = True                # serve.metrics_auth
    window: int = 200                # serve.monitor_window
    metrics_dir: str | None = None   # the worker's multiprocess directory (prepare_metrics_dir)


def prepare_metrics_dir(window: int = 200) -> str:
    """A fresh directory for this server's worker metrics, exported as ``MEDQA_METRICS_DIR`` (and the
    window as ``MEDQA_MONITOR_WINDOW``) so the inference workers, spawned after this, find them;
    removed at exit."""
    path = tempfile.mkdtemp(prefix="medqa-metrics-")
    os.environ[DIR_ENV] = path
    os.environ[WINDOW_ENV] = str(window)
    atexit.register(shutil.rmtree, path, True)
    return path


def route_of(path: str) -> str:
    """Bounded label values: known routes by name, static files as one, everything else ``other``."""
    if path.startswith("/static/"):
        return "static"
    return KNOWN_ROUTES.get(path, "other")


class _Window:
    """Rate of True over the last ``size`` observations (NaN while empty)."""

    def __init__(self, size: int):
        self.items: deque[bool] = deque(maxlen=size)

    def add(self, value: bool) -> None:
        self.items.append(bool(value))

    def rate(self) -> float:
        return sum(self.items) / len(self.items) if self.items else float("nan")


class Monitor:
    """The API-server side: one per gateway, with its own registry (+ the worker's files)."""

    def __init__(self, settings: MonitorSettings | None = None):
        self.s = settings or MonitorSettings()
        self.registry = r = CollectorRegistry(auto_describe=True)
        self.requests = Counter("medqa_requests", "HTTP requests by route, status and safety action",
                                ["route", "status", "action"], registry=r)
        self.latency = Histogram("medqa_request_latency_seconds", "Whole-request latency", ["route"],
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.ttft = Histogram("medqa_time_to_first_token_seconds", "Streamed answers: time to the first content",
                              ["route"], buckets=LATENCY_BUCKETS, registry=r)
        self.cache = Counter("medqa_cache_requests", "Answer-cache lookups", ["result"], registry=r)
        self.rules = Counter("medqa_safety_rules", "Safety rules fired (pre- and post-check)", ["rule"], registry=r)
        self.model_in_flight = 0
        Gauge("medqa_model_requests_in_flight", "Requests sent to the model (queued or running)",
              registry=r).set_function(lambda: self.model_in_flight)
        self.reminder = _Window(self.s.window)
        self.guarded = _Window(self.s.window)
        self.emergency = _Window(self.s.window)
        self.thumbs_down = _Window(self.s.window)
        self._worker = None
        if self.s.metrics_dir and os.path.isdir(self.s.metrics_dir):
            from prometheus_client.multiprocess import MultiProcessCollector

            self._worker = MultiProcessCollector(r, path=self.s.metrics_dir)
        r.register(_LiveCollector(self))

    # ------------------------------------------------------------ wiring used by the gateway
    def is_open(self, path: str) -> bool:
        return path == METRICS_PATH and not self.s.auth

    def handles(self, method: str, path: str) -> bool:
        return method == "GET" and path == METRICS_PATH

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    async def respond(self, send, ctx) -> None:
        """Answer ``GET /metrics`` (``ctx``: the gateway's RequestContext)."""
        from serve.context import headers

        body, content_type = self.render()
        ctx.status = 200
        await send({"type": "http.response.start", "status": 200,
                    "headers": headers(ctx, content_type.encode(), len(body))})
        await send({"type": "http.response.body", "body": body})

    def meter(self, app):
        """Wrap the app the gateway forwards model calls to: counts requests in the model's hands."""
        async def metered(scope, receive, send):
            if scope.get("type") != "http" or scope.get("method") != "POST":
                return await app(scope, receive, send)
            self.model_in_flight += 1
            try:
                return await app(scope, receive, send)
            finally:
                self.model_in_flight -= 1
        return metered

    def observe(self, rec: dict) -> None:
        """One finished request, from the gateway's audit record (status, latency_ms, endpoint,
        action, rules, cached, model_used, ttft_ms)."""
        route = route_of(rec.get("path", ""))
        self.requests.labels(route, str(rec.get("status", 0)), rec.get("action") or "none").inc()
        self.latency.labels(route).observe(max(0.0, float(rec.get("latency_ms") or 0)) / 1000)
        if rec.get("ttft_ms") is not None:
            self.ttft.labels(route).observe(float(rec["ttft_ms"]) / 1000)
        if rec.get("cached") is not None and rec.get("action") == "pass":
            self.cache.labels("hit" if rec["cached"] else "miss").inc()
        for rule in rec.get("rules") or ():
            self.rules.labels(str(rule)).inc()
        if rec.get("status") == 200 and rec.get("endpoint") in ("predict", "chat"):
            self.emergency.add(rec.get("action") == "emergency")
            if rec.get("model_used") and not rec.get("cached"):
                self.reminder.add("reminder_added" in (rec.get("rules") or ()))
                self.guarded.add(guarded(rec.get("rules") or ()))

    def record_feedback(self, thumbs_down: bool) -> None:
        """Answer feedback (👍/👎): feeds ``medqa_quality_thumbs_down_rate``."""
        self.thumbs_down.add(thumbs_down)

    def record_feedback_body(self, body: bytes) -> None:
        """The body of a ``POST /feedback`` the feedback route accepted (201): its ``rating``."""
        try:
            rating = json.loads(body).get("rating")
        except (ValueError, AttributeError):
            return
        if rating in ("up", "down"):
            self.record_feedback(rating == "down")

    def worker_value(self, name: str) -> float:
        """Sum of a worker metric's samples named ``name`` (0 when absent)."""
        if self._worker is None:
            return 0.0
        return sum(s.value for fam in self._worker.collect() for s in fam.samples if s.name == name)


FEEDBACK_TAP_BYTES = 65536     # a /feedback body larger than this is not tapped (the route caps its texts)


class _LiveCollector:
    """Gauges computed at scrape time: the sliding-window rates and the queue depth."""

    def __init__(self, monitor: Monitor):
        self.m = monitor

    def describe(self):
        return []

    def collect(self):
        m = self.m
        for name, window, doc in (
                ("medqa_quality_reminder_added_rate", m.reminder,
                 "Share of recent model answers the post-check had to append the consultation reminder to"),
                ("medqa_quality_guarded_rate", m.guarded,
                 "Share of recent model answers an output guard replaced or masked (echo, prompt leak, personal data)"),
                ("medqa_quality_emergency_reply_rate", m.emergency, "Share of recent answers that were emergency guidance"),
                ("medqa_quality_thumbs_down_rate", m.thumbs_down, "Share of recent feedback that was thumbs-down")):
            yield GaugeMetricFamily(name, doc + f" (last {m.s.window}; NaN while empty)", value=window.rate())
            yield GaugeMetricFamily(name.replace("_rate", "_window_count"), f"Observations behind {name}",
                                    value=len(window.items))
        running = m.worker_value("medqa_batch_rows_running")
        yield GaugeMetricFamily("medqa_queue_depth", "Model requests waiting for a batch (in flight - running)",
                                value=max(0.0, m.model_in_flight - running))


class WorkerMetrics:
    """The inference worker's side (multiprocess files). ``from_env()`` is a no-op object when the
    server did not prepare a directory (e.g. the worker built by a unit test)."""

    def __init__(self, metrics_dir: str | None, window: int = 200, max_batch: int = 64):
        self.enabled = bool(metrics_dir)
        if not self.enabled:
            return
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
        from prometheus_client import values

        if not getattr(values.ValueClass, "_multiprocess", False):
            values.ValueClass = values.MultiProcessValue()
        buckets = sorted({1, 2, 4, 8, 16, 32, 64, max_batch})
        self.batch_size = Histogram("medqa_batch_size", "Requests per generate call", buckets=buckets, registry=None)
        self.tokens = Counter("medqa_generated_tokens", "New tokens generated", registry=None)
        self.seconds = Histogram("medqa_generation_seconds", "Wall time of one batch's generation",
                                 buckets=LATENCY_BUCKETS, registry=None)
        self.answers = Counter("medqa_answers_generated", "Answers the model generated", registry=None)
        self.truncated = Counter("medqa_answers_truncated", "Answers that hit their max_new_tokens", registry=None)
        self.running = Gauge("medqa_batch_rows_running", "Requests in the batch being generated",
                             multiprocess_mode="livesum", registry=None)
        self.trunc_rate = Gauge("medqa_quality_truncation_rate", f"Share of the last {window} generated answers "
                                "that hit max_new_tokens", multiprocess_mode="mostrecent", registry=None)
        self.window = _Window(window)

    @classmethod
    def from_env(cls, max_batch: int = 64) -> "WorkerMetrics":
        return cls(os.environ.get(DIR_ENV) or None, int(os.environ.get(WINDOW_ENV) or 200), max_batch)

    def batch_started(self, rows: int) -> None:
        if self.enabled:
            self.running.set(rows)

    def batch_done(self, new_tokens: list[int], caps: list[int], seconds: float) -> None:
        if not self.enabled:
            return
        self.running.set(0)
        self.batch_size.observe(len(new_tokens))
        self.tokens.inc(sum(new_tokens))
        self.seconds.observe(seconds)
        self.answers.inc(len(new_tokens))
        for n, cap in zip(new_tokens, caps):
            hit = n >= cap
            self.window.add(hit)
            if hit:
                self.truncated.inc()
        self.trunc_rate.set(self.window.rate())
