"""Writing the question log off the caller's thread.

`BackgroundQuestionLog` puts a store (SQLite or PostgreSQL) on a thread of its own, so that
recording never makes a reply wait for the disk, and neither a failing database nor one that
cannot be opened ever breaks one.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime

from core.questionlog.interface import (
    DAY_SECONDS,
    Feedback,
    LoggedQuestion,
    QuestionLogError,
    QuestionLogStore,
    RawId,
)

logger = logging.getLogger(__name__)



# A write to run on the writer's thread, with the store.
_Task = Callable[[QuestionLogStore], None]


@dataclass(frozen=True)
class _Asked:
    """A question waiting to be written, with the raw ids its pseudonyms are made from: the
    key is in the store, which may not be open yet when the question is asked."""

    entry: LoggedQuestion
    chat_id: RawId
    user_id: RawId

    def pseudonymised(self, store: QuestionLogStore) -> LoggedQuestion:
        platform = self.entry.platform
        return replace(self.entry, chat=store.pseudonym(platform, self.chat_id),
                       user=store.pseudonym(platform, self.user_id))

    def write(self, store: QuestionLogStore) -> None:
        store.record(self.pseudonymised(store))


# What the writer's queue holds: a question, another write, a flush marker, or None to stop.
_Queued = _Asked | _Task | threading.Event | None
# The writer thread waits this long after a first write arrives, then does everything queued
# by then at once, the questions in one transaction: during a burst the thread wakes (and takes
# Python's global lock from the event loop) once per pause instead of once per question.
WRITE_PAUSE = 0.02
# A store that cannot be opened is tried again after FIRST_REOPEN_DELAY seconds, then after
# twice as long each time, up to MAX_REOPEN_DELAY.
FIRST_REOPEN_DELAY = 0.5
MAX_REOPEN_DELAY = 30.0


@dataclass
class _FailureReport:
    """Counts failed writes and logs them at most once a minute, so a broken disk cannot
    flood the logs with one line per question."""

    interval: float = 60.0
    count: int = 0
    unreported: int = 0
    last_logged: float = field(default=float("-inf"))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, problem: str) -> None:
        with self.lock:
            self.count += 1
            self.unreported += 1
            now = time.monotonic()
            if now - self.last_logged < self.interval:
                return
            self.last_logged, unreported, self.unreported = now, self.unreported, 0
        logger.error("question log: %d write(s) lost (%s); the bot keeps answering",
                     unreported, problem)


class BackgroundQuestionLog:
    """A question log whose writes run on one thread of its own, through a bounded queue.

    `store` is the storage, or a function that opens it. The thread then opens it, and while
    that fails (a database locked by another process, a directory missing) it tries again with a
    growing delay: meanwhile `up` is False, `problem` says why, and each question is lost and
    counted. `record`, `record_choice`, `record_feedback` and `purge` return at once. A full
    queue or a database error (locked, read-only, disk full) loses that write only: it is
    counted (`failures`, and `on_failure` for metrics) and logged, and the next writes are tried
    as usual. With `retention_days`, questions older than that are purged once the store is
    open, then daily.
    """

    def __init__(self, store: QuestionLogStore | Callable[[], QuestionLogStore], *,
                 retention_days: int | None = None, on_failure: Callable[[], None] | None = None,
                 capacity: int = 10_000) -> None:
        self._store = None if callable(store) else store
        self._open_store = store if callable(store) else None
        self._open_error: str | None = None  # why the last attempt to open failed
        self._next_open = 0.0  # time.monotonic() of the next attempt
        self._reopen_delay = FIRST_REOPEN_DELAY
        self.retention_days = retention_days
        self._on_failure = on_failure
        self._failures = _FailureReport()
        self._tasks: queue.Queue[_Queued] = queue.Queue(maxsize=capacity)
        self._thread = threading.Thread(target=self._work, name="faqbot-question-log",
                                        daemon=True)
        self._thread.start()

    @property
    def failures(self) -> int:
        """Writes lost so far."""
        return self._failures.count

    @property
    def up(self) -> bool:
        """True once the store is open (each write may still fail on its own)."""
        return self._store is not None

    def problem(self) -> str | None:
        """Why questions are not being recorded, or None while the store is open."""
        if self._store is not None:
            return None
        return (f"question log not open, trying again ({self._open_error or 'opening'}); "
                f"{self.failures} writes lost so far")

    def record(self, entry: LoggedQuestion, chat_id: RawId, user_id: RawId) -> None:
        """Queue the insertion of one question; `entry.chat` and `entry.user` are replaced
        by the pseudonyms of the ids."""
        self._submit(_Asked(entry, chat_id, user_id))

    def record_choice(self, platform: str, chat_id: RawId, user_id: RawId, choice: str,
                      at: datetime) -> None:
        """Queue a clarification choice (after the question it answers: one queue, in order)."""

        def attach(store: QuestionLogStore) -> None:
            store.record_choice(platform, store.pseudonym(platform, chat_id),
                                store.pseudonym(platform, user_id), choice, at)

        self._submit(attach)

    def record_feedback(self, platform: str, chat_id: RawId, user_id: RawId, question_ref: str,
                        feedback: Feedback) -> None:
        """Queue feedback (after the question it rates: one queue, in order)."""

        def attach(store: QuestionLogStore) -> None:
            store.record_feedback(platform, store.pseudonym(platform, chat_id), question_ref,
                                  replace(feedback, user=store.pseudonym(platform, user_id)))

        self._submit(attach)

    def purge(self, older_than_days: int) -> None:
        """Queue a purge."""
        self._submit(lambda store: store.purge(older_than_days))

    def entries(self, since: datetime | None = None) -> list[LoggedQuestion]:
        """The stored questions, once every write queued so far is done."""
        self.flush()
        if self._store is None:
            raise QuestionLogError(self.problem() or "question log not open")
        return self._store.entries(since)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every write queued so far is done; False on timeout."""
        done = threading.Event()
        try:
            self._tasks.put(done, timeout=timeout)
        except queue.Full:
            return False
        return done.wait(timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Finish the queued writes (waiting up to `timeout` seconds), then close the store."""
        try:
            self._tasks.put(None, timeout=timeout)
        except queue.Full:
            logger.error("question log: writer stuck; %d queued writes are lost",
                         self._tasks.qsize())
        self._thread.join(timeout)
        if not self._thread.is_alive() and self._store is not None:
            self._store.close()

    def _submit(self, task: _Asked | _Task) -> None:
        try:
            self._tasks.put_nowait(task)
        except queue.Full:
            self._failed("queue full")

    def _failed(self, problem: str) -> None:
        self._failures.add(problem)
        if self._on_failure is not None:
            self._on_failure()

    # -- the writer's thread ------------------------------------------------------------------

    def _work(self) -> None:
        next_purge = time.monotonic()
        days = self.retention_days
        while True:
            self._try_to_open()
            if self._store is not None and days is not None and time.monotonic() >= next_purge:
                self._run(lambda store: store.purge(days))
                next_purge = time.monotonic() + DAY_SECONDS
            try:
                first = self._tasks.get(timeout=self._idle_wait(next_purge))
            except queue.Empty:
                continue
            time.sleep(WRITE_PAUSE)
            self._try_to_open()
            if not self._run_all([first, *self._queued()]):
                return

    def _idle_wait(self, next_purge: float) -> float | None:
        """How long the thread may wait for work: until the next attempt to open, or the next
        purge; None (for ever) when there is neither."""
        if self._store is None:
            return max(0.0, self._next_open - time.monotonic())
        if self.retention_days is None:
            return None
        return max(0.0, next_purge - time.monotonic())

    def _try_to_open(self) -> None:
        """Open the store if it is not open and the delay since the last attempt is over."""
        if self._open_store is None or self._store is not None:
            return
        if time.monotonic() < self._next_open:
            return
        try:
            self._store = self._open_store()
        except Exception as error:  # whatever the reason, try again later and keep answering
            if self._open_error is None:
                logger.error("question log: %s; trying again, the questions asked meanwhile "
                             "are lost (counted)", error)
            self._open_error = str(error)
            self._next_open = time.monotonic() + self._reopen_delay
            self._reopen_delay = min(self._reopen_delay * 2, MAX_REOPEN_DELAY)
            return
        if self._open_error is not None:
            logger.warning("question log: open at last; %d writes were lost meanwhile",
                           self.failures)
        self._open_error = None

    def _queued(self) -> list[_Queued]:
        tasks: list[_Queued] = []
        while True:
            try:
                tasks.append(self._tasks.get_nowait())
            except queue.Empty:
                return tasks

    def _run_all(self, tasks: list[_Queued]) -> bool:
        """Run the tasks in order, each run of questions as one insert; False at the stop
        sign (None), after the tasks before it."""
        questions: list[_Asked] = []
        for task in tasks:
            if isinstance(task, _Asked):
                questions.append(task)
                continue
            self._insert(questions)
            questions = []
            if task is None:
                return False
            if isinstance(task, threading.Event):
                task.set()
            else:
                self._run(task)
        self._insert(questions)
        return True

    def _insert(self, questions: list[_Asked]) -> None:
        """One transaction for all; if it fails, one each, so that only a bad one is lost."""
        if not questions:
            return
        store = self._store
        if store is not None:
            try:
                store.record_many([question.pseudonymised(store) for question in questions])
                return
            except Exception:  # retried one by one just below, where failures are counted
                pass
        for question in questions:
            self._run(question.write)

    def _run(self, task: _Task) -> None:
        store = self._store
        if store is None:
            self._failed(self._open_error or "not open")
            return
        try:
            task(store)
        except Exception as error:  # the writer must outlive any one bad write
            self._failed(f"{type(error).__name__}: {error}")
