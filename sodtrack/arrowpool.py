"""Which allocator Arrow's buffers come from.

pyarrow's default pool on Linux is mimalloc, which keeps the pages a run frees for reuse: after
the bookings merge and the validation's batches the process stays well above what it uses.
Measured with ``bench/bench_extract.py`` (peak RSS, 1M bookings, one run): this switch 924 → 855
MiB; ``ARROW_DEFAULT_MEMORY_POOL=system`` set before the process starts did better still (633 /
775 MiB at 200k / 1M in another run), so a worker's environment may set it too. The system
allocator (glibc) hands freed memory back, and ``sodtrack.validation.batching.release_memory``
trims it between batches.

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
    chose another; returns the pool's backend name. Buffers allocated before keep their pool.

    Only second best: the switch covers what pyarrow allocates through its default pool, not
    what Arrow's C++ readers take from the pool they found at their first use (a Parquet
    file read after the switch still counts its buffers in the first pool). The variable set
    before the first allocation, as importing ``sodtrack`` first does, covers both."""
    # Unset or ``system`` (importing ``sodtrack`` sets it, too late for a process that
    # imported pyarrow first): the system pool is wanted. Another value was chosen: kept.
    wanted = os.environ.get(ENV) or DEFAULT_BACKEND
    if wanted == DEFAULT_BACKEND and pa.default_memory_pool().backend_name != DEFAULT_BACKEND:
        pa.set_memory_pool(pa.system_memory_pool())
    return str(pa.default_memory_pool().backend_name)
