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
    chose one; returns the pool's backend name. Buffers allocated before keep their pool."""
    if not os.environ.get(ENV) and pa.default_memory_pool().backend_name != DEFAULT_BACKEND:
        pa.set_memory_pool(pa.system_memory_pool())
    return str(pa.default_memory_pool().backend_name)
