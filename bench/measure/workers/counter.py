"""--metric instructions: workers under callgrind (bench.measure.instructions) count every CPU row's instructions.

One worker per memory layout, each with its own environment padding, run at once in threads (a count does not
depend on the load); records reach the caller in its own thread, as they come.
"""
from __future__ import annotations

import queue
import shutil
import tempfile
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from bench.measure.record import Record
from bench.measure.workers.process import Worker
from bench.measure.workers.protocol import Job, Row, Side
from bench.measure.workers.rows import FAILED, rows_for


def count_instructions(side: Side, job: Job, *, on_record: Callable[[str, Record], None],
                       spawn: Callable[[Side, Job, int], Worker] = Worker, layouts: int | None = None,
                       only: Callable[[Row], bool] | None = None) -> None:
    """`--metric instructions`: workers under callgrind (bench.measure.instructions) measure the CPU rows, for their
    instruction count only: their records carry no samples (times under valgrind mean nothing). One worker per
    memory layout (`layouts`, default instructions.LAYOUTS), each with its own environment padding, run at once
    (a count does not depend on the load); the records of layout i carry process -1 - i, and the row's count is
    the lowest of them (bench.store.frames). BenchError (one line) when valgrind, its header or a C compiler is
    missing."""
    from bench.measure.instructions import LAYOUTS, build_library, counter_environ, default_folder, launcher

    library = build_library(default_folder())
    out = Path(tempfile.mkdtemp(prefix="bench-callgrind-"))
    tiny = replace(job.policy, budget_s=0.0, warmup_s=0.0, min_samples=job.policy.floor_samples)
    counted = replace(job, policy=tiny, metric="instructions", counter_library=str(library), counter_out=str(out),
                      threads=1)
    found: queue.Queue = queue.Queue()
    live: list[Worker] = []  # killed if the caller stops early (Ctrl-C): joining would wait for whole suites

    def one_layout(layout: int) -> None:
        number = -1 - layout
        folder = out / str(layout)  # each worker its own dump folder: a worker reads back only its own dumps
        folder.mkdir()
        traced = replace(side, launcher=launcher(folder), environ=(*side.environ, *counter_environ(layout, library)))
        laid = replace(counted, counter_out=str(folder))
        worker = None
        try:
            worker = spawn(traced, laid, number)
            live.append(worker)
            for row in [r for r in rows_for(worker.ready, laid) if r.device == "cpu" and (only is None or only(r))]:
                if worker is None:
                    worker = spawn(traced, laid, number)
                    live.append(worker)
                record = worker.measure(row, process=number)
                found.put(replace(record, measurement=None))
                if record.status in FAILED:
                    worker.kill()
                    worker = None
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread, raised there
            found.put(exc)
        finally:
            if worker is not None:
                worker.close()
            found.put(None)

    count = layouts or LAYOUTS
    threads = [threading.Thread(target=one_layout, args=(i,), name=f"bench-counter-{i}", daemon=True)
               for i in range(count)]
    finished = False
    try:
        for t in threads:
            t.start()
        done, error = 0, None
        while done < count:  # records reach the caller in its own thread, as they come
            item = found.get()
            if item is None:
                done += 1
            elif isinstance(item, BaseException):
                error = error or item
            else:
                on_record(side.name, item)
        finished = True
        if error is not None:
            raise error
    finally:
        if not finished:
            for worker in list(live):
                worker.kill()
        for t in threads:
            t.join()
        shutil.rmtree(out, ignore_errors=True)
