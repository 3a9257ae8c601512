"""The Sodtrack data pipeline's library (no Prefect here: see ``flows/`` and ``tasks/``).

Importing the package makes the system allocator Arrow's default memory pool for this process
and its children (``ARROW_DEFAULT_MEMORY_POOL=system``), unless the environment chose one:
Arrow reads the variable once, at its first allocation, so it has to be set before pyarrow
allocates anything. pyarrow's own Linux default (mimalloc) keeps what a run frees; measured in
``sodtrack.arrowpool``, which switches the pool of a process that imported pyarrow first.
"""

from __future__ import annotations

import os as _os

_os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
