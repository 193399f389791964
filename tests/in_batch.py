"""A store whose every public operation runs inside its own ``batch()`` (test-only).

The behaviour suite runs each test that takes the ``store`` fixture twice: on the store itself and
on this wrapper, so that every operation allowed in a batch is also exercised on the batch's
transaction (the same per-thread connection, joined by the same operations) and the transaction
path can never go untested again. A call returning a context manager (a stream) keeps its batch
open until the block ends; one returning an iterator (``jobs()``) is consumed inside its batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import TracebackType
from typing import Any

from jobstore import JobStore

#: What is not an operation to run in a batch: the life cycle, batch() itself, and read_logs (a
#: callback failing inside a batch rolls the whole batch back, deliveries included: at least once).
NOT_IN_A_BATCH = frozenset({"batch", "close", "destroy", "initialize", "resume", "read_logs"})


class EveryCallInABatch:
    """Forwards to ``store``; each public method call runs in ``with store.batch():``."""

    def __init__(self, store: JobStore) -> None:
        object.__setattr__(self, "_store", store)

    @property  # type: ignore[misc]
    def __class__(self) -> type:  # isinstance(wrapper, FileJobStore) holds, as for the store
        return type(self._store)

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._store, name)
        if name.startswith("_") or name in NOT_IN_A_BATCH or not callable(value):
            return value

        def in_a_batch(*args: Any, **kwargs: Any) -> Any:
            batch = self._store.batch()
            batch.__enter__()
            try:
                result = value(*args, **kwargs)
                if hasattr(result, "__enter__") and hasattr(result, "__exit__"):
                    return _BatchUntilExit(batch, result)
                if isinstance(result, Iterator):
                    result = iter(list(result))
            except BaseException as error:
                batch.__exit__(type(error), error, error.__traceback__)
                raise
            batch.__exit__(None, None, None)
            return result

        return in_a_batch

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._store, name, value)

    def __repr__(self) -> str:
        return f"EveryCallInABatch({self._store!r})"


class _BatchUntilExit:
    """A context manager whose batch ends when its block does."""

    def __init__(self, batch: Any, inner: Any) -> None:
        self._batch = batch
        self._inner = inner

    def __enter__(self) -> Any:
        try:
            return self._inner.__enter__()
        except BaseException as error:
            self._batch.__exit__(type(error), error, error.__traceback__)
            raise

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> bool:
        try:
            suppressed = bool(self._inner.__exit__(kind, error, traceback))
        except BaseException as raised:
            self._batch.__exit__(type(raised), raised, raised.__traceback__)
            raise
        if kind is not None and not suppressed:
            self._batch.__exit__(kind, error, traceback)
        else:
            self._batch.__exit__(None, None, None)
        return suppressed
