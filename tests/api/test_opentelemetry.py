"""FastAPI's native OpenTelemetry is the operator's choice (REGISTRY_OPENTELEMETRY): off by default, so
that no request pays for asking the global providers whether one is configured; on, a configured
tracer sees every request. Both apps run in a process of their own (a global provider is set once)."""
import os
import subprocess
import sys

_PROCESS = """
import json, sys
from opentelemetry import trace
from opentelemetry.trace import INVALID_SPAN_CONTEXT, NonRecordingSpan

started = []

class Tracer(trace.Tracer):  # an operator's tracer: records the spans it is asked for
    def start_span(self, name, *args, **kwargs):
        started.append(name)
        return NonRecordingSpan(INVALID_SPAN_CONTEXT)

    def start_as_current_span(self, name, *args, **kwargs):
        started.append(name)
        return trace.use_span(NonRecordingSpan(INVALID_SPAN_CONTEXT))

class Provider(trace.TracerProvider):
    def get_tracer(self, *args, **kwargs):
        return Tracer()

trace.set_tracer_provider(Provider())
from fastapi.testclient import TestClient
from api.app import create_app
from registry.settings import get_settings

spans = {}
for setting in ("default", "true"):
    settings = get_settings() if setting == "default" else get_settings().model_copy(update={"opentelemetry": True})
    started.clear()
    # no lifespan: nothing else to start; an unknown page is answered (404) either way
    status = TestClient(create_app(settings)).get("/no-such-page").status_code
    spans[setting] = (status, list(started))
print(json.dumps(spans))
"""


def test_should_trace_requests_only_when_the_operator_turns_opentelemetry_on(database_url):
    import json

    env = {**os.environ, "REGISTRY_DATABASE_URL": database_url}
    env.pop("REGISTRY_OPENTELEMETRY", None)  # the default: off
    out = subprocess.run([sys.executable, "-c", _PROCESS], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    spans = json.loads(out.stdout.strip().splitlines()[-1])
    assert spans["default"] == [404, []]  # the global tracer is never asked
    assert spans["true"][0] == 404 and spans["true"][1]  # REGISTRY_OPENTELEMETRY=true: the request is traced
