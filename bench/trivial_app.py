"""The baseline of bench/bench_serving.py: the smallest FastAPI app, one endpoint answering {"ok": true}.

Served by uvicorn from the same virtual environment with the same options and worker count as
`registry serve` (loaders/cli.py SERVE_OPTIONS), so that the ratio measures the registry's own cost.
"""
from fastapi import FastAPI

app = FastAPI()


@app.get("/ok")
async def ok() -> dict:
    return {"ok": True}
