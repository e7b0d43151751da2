"""CSV imports as background jobs: accepted at once (202), run in the audience process, followed by
polling the job.

Why an asyncio task in the process that received the upload, and not a queue and a worker: the
file is spooled on that replica's disk (no shared file store to run), the heavy part is
PostgreSQL's (COPY of each chunk into a staging table, merged into the list in the same
transaction), and the CPU part, parsing, runs chunk by chunk in a worker thread overlapped with the
merge of the previous chunk, so the event loop keeps serving requests. What a queue would add — surviving a crash — the transaction already gives: the whole
import is one transaction, so a process that dies mid-way leaves the list exactly as it was, and
`fail_orphaned_imports` (at start-up and every half minute, on any replica) marks the job failed
because no live transaction holds its lock any more. The user then uploads again.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mailstify_contracts import SubscriberChanged, subjects
from mailstify_servicekit.errors import Conflict, NotFound

from ..domain import model
from ..domain.csv_import import Chunk, CsvImportFile, FileRefused, ImportRow, RowError
from ..domain.model import MAX_REPORTED_ERRORS, ImportJob, MailingList
from .handlers import owned_list
from .ports import AudienceUnitOfWork, MergeCounts, PreparedRows

log = logging.getLogger(__name__)

IMPORT_NOT_FOUND = "import not found"
ALREADY_RUNNING = "an import is already running for this list; wait until it has finished"
ORPHANED = "the audience service stopped while this import ran; the list is unchanged, upload the file again"
INTERRUPTED = "the audience service was stopped while this import ran; the list is unchanged, upload the file again"
UNEXPECTED = "the import failed unexpectedly; the list is unchanged, try again"
SWEEP_SECONDS = 30.0

UowFactory = Callable[[], AudienceUnitOfWork]


async def importable_list(uow: AudienceUnitOfWork, account_id: str, list_id: str) -> MailingList:
    """The list, checked before an upload is read: 404 when not the account's, 409 when busy."""
    async with uow:
        mailing_list = await owned_list(uow, account_id, list_id, with_count=False)
        if await uow.imports.running_on(mailing_list.id):
            raise Conflict(ALREADY_RUNNING)
    return mailing_list


# Rows per chunk: each is one COPY and one merge statement (whose count trigger aggregates the chunk),
# and two chunks are in memory at a time (the one being merged and the one being parsed).
IMPORT_CHUNK_ROWS = 25_000

# Rows read before answering the upload, so that a file that is wrong from the start (an export in
# the wrong encoding, a binary file) is refused at once instead of as a failed job.
PRECHECK_ROWS = 100


def _read_start(path: Path) -> None:
    with path.open("rb") as binary:
        next(CsvImportFile(binary).chunks(PRECHECK_ROWS), None)


async def create_import(
    uow: AudienceUnitOfWork, account_id: str, list_id: str, mode: str | None, file_name: str, path: Path
) -> ImportJob:
    """The queued job for the spooled file at `path`. A file whose start already shows it cannot be
    imported (empty, binary, not UTF-8, no email column) is refused here, with no job (422)."""
    import_mode = model.parse_import_mode(mode)
    await asyncio.to_thread(_read_start, path)
    async with uow:
        mailing_list = await owned_list(uow, account_id, list_id, with_count=False)
        job = await uow.imports.add(account_id, mailing_list.id, import_mode, file_name[:255])
        if job is None:
            raise Conflict(ALREADY_RUNNING)
        await uow.commit()
    return job


async def get_import(uow: AudienceUnitOfWork, account_id: str, import_id: str) -> ImportJob:
    internal_id = model.parse_id(import_id)
    async with uow:
        job = internal_id and await uow.imports.get(account_id, internal_id)
    if not job:
        raise NotFound(IMPORT_NOT_FOUND)
    return job


@dataclass
class _Tally:
    processed: int = 0
    error_count: int = 0
    errors: list[RowError] = field(default_factory=list)

    def add(self, chunk: Chunk) -> None:
        self.processed += chunk.processed
        self.error_count += len(chunk.errors)
        room = MAX_REPORTED_ERRORS - len(self.errors)
        if room > 0:
            self.errors.extend(chunk.errors[:room])


ParsedChunk = tuple[Chunk, PreparedRows]


def _next_chunk(chunks: Iterator[Chunk], prepare: Callable[[Sequence[ImportRow]], PreparedRows]) -> asyncio.Task[ParsedChunk | None]:
    """The next chunk, parsed and its rows prepared for the merge, in a worker thread."""

    def parse() -> ParsedChunk | None:
        chunk = next(chunks, None)
        return None if chunk is None else (chunk, prepare(chunk.rows))

    return asyncio.ensure_future(asyncio.to_thread(parse))


async def _update(uow_factory: UowFactory, job_id: int, **values: object) -> None:
    async with uow_factory() as uow:
        await uow.imports.update(job_id, **values)
        await uow.commit()


async def _fail(uow_factory: UowFactory, job_id: int, detail: str, tally: _Tally) -> None:
    async with uow_factory() as uow:
        await uow.imports.finish(job_id, status="failed", detail=detail, processed=tally.processed)
        await uow.commit()


async def run_import(uow_factory: UowFactory, job: ImportJob, path: Path) -> None:
    """Read the spooled file, stage its valid rows, merge them into the list in one transaction,
    and record the outcome on the job; the file is deleted afterwards whatever happened."""
    tally = _Tally()
    try:
        await _stage_and_merge(uow_factory, job, path, tally)
    except FileRefused as refused:
        await _fail(uow_factory, job.id, refused.detail, tally)
    except asyncio.CancelledError:
        await asyncio.shield(_fail(uow_factory, job.id, INTERRUPTED, tally))
        raise
    except Exception:
        log.exception("import %s of list %s failed", job.id, job.list_id)
        await _fail(uow_factory, job.id, UNEXPECTED, tally)
    finally:
        path.unlink(missing_ok=True)


async def _stage_and_merge(uow_factory: UowFactory, job: ImportJob, path: Path, tally: _Tally) -> None:
    started_at = time.perf_counter()
    counts = MergeCounts(imported=0, updated=0, skipped=0)
    async with uow_factory() as uow:
        await uow.staging.open(job.id, job.list_id)
        await _update(uow_factory, job.id, status="running")
        with path.open("rb") as binary:
            csv_file = await asyncio.to_thread(CsvImportFile, binary)
            chunks = csv_file.chunks(IMPORT_CHUNK_ROWS)
            prepare = functools.partial(uow.staging.prepare, job.account_id, job.list_id)
            pending = _next_chunk(chunks, prepare)
            progress: asyncio.Task[None] | None = None
            try:
                # The next chunk is parsed (in a thread) while PostgreSQL merges this one: the two
                # halves of the work on two cores instead of one after the other.
                while (parsed := await pending) is not None:
                    pending = _next_chunk(chunks, prepare)
                    chunk, prepared = parsed
                    if chunk.rows:
                        counts += await uow.staging.merge(job.mode, prepared)
                    if chunk.repeats:
                        await uow.staging.hold(chunk.repeats)
                    tally.add(chunk)
                    # Progress is its own transaction (a commit, an fsync): written beside the next
                    # merge rather than before it, one at a time.
                    if progress:
                        await progress
                    progress = asyncio.create_task(
                        _update(uow_factory, job.id, processed=tally.processed, error_count=tally.error_count)
                    )
                if progress:
                    await progress
            finally:
                with contextlib.suppress(BaseException):
                    await pending  # the thread must be done with the file before it is closed
                if progress:
                    with contextlib.suppress(BaseException):
                        await progress
        merged_at = time.perf_counter()
        repeat_counts, duplicates = await uow.staging.merge_repeats(
            job.account_id, job.list_id, job.mode, MAX_REPORTED_ERRORS
        )
        counts += repeat_counts
        repeats_at = time.perf_counter()
        reported = sorted(
            [{"line": e.line, "reason": e.reason} for e in tally.errors]
            + [{"line": line, "reason": f"duplicate of line {first} (same address)"} for line, first in duplicates.lines],
            key=lambda error: error["line"],
        )[:MAX_REPORTED_ERRORS]
        await uow.imports.finish(
            job.id,
            status="completed",
            processed=tally.processed,
            imported=counts.imported,
            updated=counts.updated,
            skipped=counts.skipped,
            error_count=tally.error_count + duplicates.total,
            errors=reported,
        )
        # One event for the whole import: a live list page reloads its counts, not a million rows.
        uow.emit(
            SubscriberChanged(
                account_id=job.account_id,
                list_id=str(job.list_id),
                change="imported",
                import_id=str(job.id),
                imported=counts.imported,
                updated=counts.updated,
            ),
            subjects.AUDIENCE_SUBSCRIBER_CHANGED,
        )
        await uow.commit()
    log.info(
        "import %s: %d rows read and merged in %.1f s, repeated addresses %.1f s, commit %.1f s",
        job.id, tally.processed, merged_at - started_at, repeats_at - merged_at, time.perf_counter() - repeats_at,
    )  # fmt: skip


async def fail_orphaned_imports(uow: AudienceUnitOfWork) -> list[int]:
    async with uow:
        failed = await uow.imports.fail_orphaned(ORPHANED)
        await uow.commit()
    if failed:
        log.warning("marked %d orphaned import(s) failed: %s", len(failed), failed)
    return failed


class ImportJobs:
    """The imports this process runs, as asyncio tasks; `close` interrupts them at shutdown (each
    rolls back and is marked failed)."""

    def __init__(self, uow: UowFactory):
        self._uow = uow
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self, job: ImportJob, path: Path) -> None:
        task = asyncio.create_task(run_import(self._uow, job, path), name=f"import-{job.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


class OrphanedImportSweep:
    """A background loop (servicekit's MessageLoop shape): fail orphaned imports now and every
    SWEEP_SECONDS, until stopped."""

    def __init__(self, uow: UowFactory, interval: float = SWEEP_SECONDS):
        self._uow = uow
        self._interval = interval
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        while not self._stopping.is_set():
            await fail_orphaned_imports(self._uow())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._interval)

    def stop(self) -> None:
        self._stopping.set()
