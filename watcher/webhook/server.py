"""The webhook's HTTPS server: POST /mutate answers AdmissionReviews, GET /healthz."""

import asyncio
import json
import logging
import ssl
from typing import Any

from aiohttp import web

from watcher.inject.pieces import Options
from watcher.webhook.review import ReviewError, answer

log = logging.getLogger(__name__)

MAX_BODY = 4 * 1024 * 1024
"""An AdmissionReview carries the Pod twice at most; etcd's object limit is 1.5 MiB."""
OPTIONS: web.AppKey[Options] = web.AppKey("options", Options)


async def mutate(request: web.Request) -> web.Response:
    try:
        review: Any = json.loads(await request.read())
        body = answer(review, request.app[OPTIONS])
    except (ValueError, ReviewError) as exc:
        return web.json_response({"error": str(exc)}, status=400)
    response = body["response"]
    log.info(
        "admission review",
        extra={"fields": {"uid": response["uid"], "patched": "patch" in response}},
    )
    return web.json_response(body)


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


def application(options: Options) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY)
    app[OPTIONS] = options
    app.router.add_post("/mutate", mutate)
    app.router.add_get("/healthz", healthz)
    return app


async def serve(
    options: Options, host: str, port: int, context: ssl.SSLContext, stop: asyncio.Event
) -> None:
    """Serve until ``stop`` is set, then close within a few seconds."""
    runner = web.AppRunner(application(options), shutdown_timeout=5.0, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port, ssl_context=context).start()
        log.info("webhook serving", extra={"fields": {"address": f"{host}:{port}"}})
        await stop.wait()
    finally:
        await asyncio.wait_for(runner.cleanup(), timeout=10.0)
