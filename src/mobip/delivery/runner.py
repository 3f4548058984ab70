"""Running the outbox worker: inside the server process, or alone (`mobip worker`)."""

from __future__ import annotations

import asyncio
import logging
import signal

from mobip.delivery import schedules
from mobip.delivery.handlers import register_all
from mobip.delivery.worker import Worker
from mobip.kit.runtime import Runtime

logger = logging.getLogger("mobip.worker")


class InProcessWorker:
    """The worker loop as a task of the server's event loop."""

    def __init__(self, runtime: Runtime) -> None:
        register_all(runtime)
        self.stop_event = asyncio.Event()
        self.worker = Worker(runtime.database, runtime.clock, runtime.settings)
        self.task = asyncio.create_task(self.worker.run_forever(self.stop_event))
        self.schedules_task = asyncio.create_task(schedules.run_forever(runtime, self.stop_event))
        logger.info("worker %s started in-process", self.worker.worker_id)

    async def stop(self) -> None:
        """Finish the batch in hand (and a schedules run in progress), then return."""
        self.stop_event.set()
        await self.task
        await self.schedules_task


def start_in_process(runtime: Runtime) -> InProcessWorker:
    return InProcessWorker(runtime)


def run_standalone(runtime: Runtime) -> None:
    """Run until SIGTERM or SIGINT; the batch in hand is finished before exiting."""

    async def main() -> None:
        stop_event = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop_event.set)
        register_all(runtime)
        worker = Worker(runtime.database, runtime.clock, runtime.settings)
        logger.info("worker %s started", worker.worker_id)
        await asyncio.gather(
            worker.run_forever(stop_event), schedules.run_forever(runtime, stop_event)
        )
        logger.info("worker %s stopped", worker.worker_id)

    asyncio.run(main())
