"""Which allocator Arrow's buffers come from.

pyarrow's default pool on Linux is mimalloc, which keeps the pages a run frees for reuse: after
the bookings merge and the validation's batches the process stays hundreds of MiB above what it
uses (``bench/bench_extract.py``, peak RSS by phase, ``--variant ARROW_DEFAULT_MEMORY_POOL=system``:
730 → 633 MiB at 200,000 bookings). The system allocator (glibc) hands freed memory back, and
``sodtrack.validation.batching.release_memory`` trims it between batches.

Arrow's own ``ARROW_DEFAULT_MEMORY_POOL`` (``mimalloc``, ``jemalloc``, ``system``), when set,
is respected: it is the way to measure or choose another pool.
"""

from __future__ import annotations

import os
from typing import Final

import pyarrow as pa

ENV: Final = "ARROW_DEFAULT_MEMORY_POOL"
DEFAULT_BACKEND: Final = "system"


def use_run_memory_pool() -> str:
    """Make the system allocator Arrow's default pool, unless ``ARROW_DEFAULT_MEMORY_POOL``
    chose one; returns the pool's backend name. Buffers allocated before keep their pool."""
    if not os.environ.get(ENV) and pa.default_memory_pool().backend_name != DEFAULT_BACKEND:
        pa.set_memory_pool(pa.system_memory_pool())
    return str(pa.default_memory_pool().backend_name)
