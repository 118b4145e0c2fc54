"""The baseline of bench/bench_serving.py: the smallest FastAPI app, one endpoint answering {"ok": true}.

Served by uvicorn from the same virtual environment with the same options and worker count as
`registry serve` (loaders/cli.py SERVE_OPTIONS), so that the ratio measures the registry's own cost.
`quiet` is the same app with FastAPI's native OpenTelemetry off, as the registry runs by default
(REGISTRY_OPENTELEMETRY): the bench prints it beside the baseline, which stays FastAPI's default.
"""
from fastapi import FastAPI

app = FastAPI()
quiet = FastAPI(telemetry={"tracing": False, "metrics": False, "logs": False})


@app.get("/ok")
@quiet.get("/ok")
async def ok() -> dict:
    return {"ok": True}
