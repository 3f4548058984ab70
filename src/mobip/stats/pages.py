"""GET /stats/{file_id}/{token}.csv.gz: a day's stats file behind get_stats' link (an
unguessable token, stored hashed); 410 once its 24 hours are past, 404 for anything else."""

from __future__ import annotations

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from mobip.kit.runtime import Runtime
from mobip.stats import service
from mobip.stats.errors import StatsFileExpired, StatsFileNotFound


def build_routes(_: Runtime) -> list[BaseRoute]:
    return [Route("/stats/{file_id}/{token}.csv.gz", stats_file, methods=["GET", "HEAD"])]


def _open(runtime: Runtime, file_id: str, token: str) -> service.OpenedFile:
    def work(session: Session) -> service.OpenedFile:
        return service.open_file(session, runtime.settings, file_id, token, runtime.clock.now())

    return runtime.database.run(work, immediate=False)


async def stats_file(request: Request) -> Response:
    """The file, streamed from disk."""
    runtime: Runtime = request.app.state.runtime
    try:
        opened = await run_in_threadpool(
            _open, runtime, request.path_params["file_id"], request.path_params["token"]
        )
    except StatsFileExpired as error:
        return PlainTextResponse(error.message, 410)
    except StatsFileNotFound:
        return PlainTextResponse("Not found", 404)
    return FileResponse(
        opened.path,
        media_type="application/gzip",
        filename=f"mobip-stats-{opened.day}.csv.gz",
        headers={"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"},
    )
