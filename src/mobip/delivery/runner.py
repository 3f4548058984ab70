"""Running the outbox worker: inside the server process, or alone (`mobip worker`).

Beside the outbox loop runs the runtime's task schedule (``runtime.state(Schedule)``): the jobs
the domains registered (``mobip.wiring``); the runner itself knows no domain.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from mobip.delivery.handlers import register_all
from mobip.delivery.worker import Worker
from mobip.kit.runtime import Runtime
from mobip.kit.schedule import Schedule

logger = logging.getLogger("mobip.worker")


class InProcessWorker:
    """The worker loop as a task of the server's event loop."""

    def __init__(self, runtime: Runtime) -> None:
        self.close_senders = register_all(runtime)
        self.runtime_grace = runtime.settings.worker_shutdown_grace_seconds
        self.stop_event = asyncio.Event()
        self.worker = Worker.for_runtime(runtime)
        self.task = asyncio.create_task(self.worker.run_forever(self.stop_event))
        schedule = runtime.state(Schedule)
        self.schedules_task = asyncio.create_task(schedule.run_forever(runtime, self.stop_event))
        logger.info("worker %s started in-process", self.worker.worker_id)

    async def stop(self) -> None:
        """Finish the batch in hand (and a schedules run in progress), then return.

        Past ``worker_shutdown_grace_seconds`` the unfinished messages are released instead.
        """
        self.stop_event.set()
        await finish_or_release(self.task, self.runtime_grace)
        await self.schedules_task
        await self.close_senders()  # no handler runs any more


async def finish_or_release(task: asyncio.Task[None], grace: float) -> None:
    """Wait up to ``grace`` seconds for the batch in hand; then cancel it, which releases the
    messages whose handler had not finished (lease cleared, attempt uncounted)."""
    done, _ = await asyncio.wait([task], timeout=grace)
    if not done:
        logger.warning("worker: batch not finished after %gs; releasing its messages", grace)
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def start_in_process(runtime: Runtime) -> InProcessWorker:
    return InProcessWorker(runtime)


def run_standalone(runtime: Runtime) -> None:
    """Run until SIGTERM or SIGINT: the batch in hand is finished (within the grace period) or
    released; a second signal releases it at once."""

    async def main() -> None:
        stop_event = asyncio.Event()
        hurry = asyncio.Event()
        loop = asyncio.get_running_loop()

        def on_signal() -> None:
            if stop_event.is_set():
                logger.info("worker stopping now: releasing the messages in hand")
                hurry.set()
                return
            logger.info("worker stopping: finishing the batch in hand")
            stop_event.set()

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, on_signal)
        close_senders = register_all(runtime)
        worker = Worker.for_runtime(runtime)
        logger.info("worker %s started", worker.worker_id)
        loop_task = asyncio.create_task(worker.run_forever(stop_event))
        schedule = runtime.state(Schedule)
        schedules_task = asyncio.create_task(schedule.run_forever(runtime, stop_event))
        await stop_event.wait()
        grace = runtime.settings.worker_shutdown_grace_seconds
        hurry_task = asyncio.create_task(hurry.wait())
        await asyncio.wait(
            [loop_task, hurry_task], timeout=grace, return_when=asyncio.FIRST_COMPLETED
        )
        hurry_task.cancel()
        await finish_or_release(loop_task, 0)  # the grace period (or its hurry) is over
        await schedules_task
        await close_senders()  # no handler runs any more
        logger.info("worker %s stopped", worker.worker_id)

    asyncio.run(main())
