"""LitServe's OpenAI spec with two fixes for a long-running server (LitServe 0.2.19):

1. ``OpenAISpec.chat_completion`` adds an entry to ``response_buffer`` for every request and never
   removes it, so the API-server process grows with every request served. Here each request's
   entries are removed when its response is complete, fails, or is abandoned (client gone,
   gateway deadline); late messages for a removed entry are dropped by LitServe.
2. When an inference worker dies, the requests it had taken would wait forever (LitServe marks them
   failed only in the main process, see serve/workers.py). A watcher task in the API-server process
   fails them with 503 as soon as the worker's PID is gone; requests still in the queue stay there
   and are answered by the restarted worker."""
from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque

from fastapi import BackgroundTasks, HTTPException
from fastapi.responses import StreamingResponse
from litserve.callbacks import EventTypes
from litserve.specs.openai import ChatCompletionRequest, OpenAISpec
from litserve.utils import LitAPIStatus, ResponseBufferItem

from serve.workers import WorkerPids, pid_alive

logger = logging.getLogger("serve.spec")

WATCH_INTERVAL_S = 0.2
WORKER_DIED = "the model worker stopped while answering this request and is being restarted; retry shortly"


class MedQAOpenAISpec(OpenAISpec):
    def __init__(self, worker_pids: WorkerPids):
        super().__init__()
        self.worker_pids = worker_pids
        self._taken_by: dict = {}            # uid → PID of the worker that took it (seen by the watcher)
        self._watcher: asyncio.Task | None = None

    def __getstate__(self):
        state = super().__getstate__()
        state["_watcher"] = None
        state["_taken_by"] = {}
        return state

    # ------------------------------------------------------------------ dead-worker watcher
    def _ensure_watcher(self) -> None:
        loop = asyncio.get_running_loop()
        if self._watcher is None or self._watcher.done() or self._watcher.get_loop() is not loop:
            self._watcher = loop.create_task(self._watch(), name="medqa-dead-worker-watcher")

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(WATCH_INTERVAL_S)
            try:
                self.fail_requests_of_dead_workers()
            except Exception:  # never let the watcher die silently
                logger.exception("dead-worker watcher failed")

    def fail_requests_of_dead_workers(self) -> int:
        """Fail (503) every unfinished request whose worker has died; returns how many."""
        failed = 0
        for uid, item in list(self.response_buffer.items()):
            if item.worker_id is None or item.response_queue is None:
                continue                                  # still queued: the restarted worker answers it
            pid = self._taken_by.setdefault(uid, self.worker_pids.pid(item.worker_id))
            if pid == 0 or pid_alive(pid):               # 0: worker never registered; the deadline applies
                continue
            item.response_queue.append((HTTPException(503, WORKER_DIED), LitAPIStatus.ERROR))
            item.event.set()
            self._release([uid])
            failed += 1
        for uid in [u for u in self._taken_by if u not in self.response_buffer]:
            del self._taken_by[uid]
        if failed:
            logger.warning("inference worker died: failed %d request(s) it had taken with 503", failed)
        return failed

    # ------------------------------------------------------------------ requests
    def _release(self, uids) -> None:
        for uid in uids:
            self.response_buffer.pop(uid, None)
            self._taken_by.pop(uid, None)

    async def chat_completion(self, request: ChatCompletionRequest, background_tasks: BackgroundTasks):
        self._ensure_watcher()
        self._server._callback_runner.trigger_event(
            EventTypes.ON_REQUEST.value, active_requests=self._server.active_requests, litserver=self._server)
        uids = [uuid.uuid4() for _ in range(request.n)]
        pipes = []
        for uid in uids:
            req = request.model_copy()
            req.n = 1
            q, event = deque(), asyncio.Event()
            self.response_buffer[uid] = ResponseBufferItem(response_queue=q, event=event)
            self.request_queue.put((self.response_queue_id, uid, time.monotonic(), req))
            pipes.append(self.data_streamer(q, event, send_status=True))
        if request.stream:
            return StreamingResponse(self._stream_then_release(request, pipes, uids),
                                     media_type="text/event-stream", background=background_tasks)
        try:
            return await self.non_streaming_completion(request, pipes)
        finally:
            self._release(uids)

    async def _stream_then_release(self, request, pipes, uids):
        try:
            async for chunk in self.streaming_completion(request, pipes):
                yield chunk
        finally:
            self._release(uids)
