"""The pull step of ``prefect.yaml``: run each flow run from this checkout, wherever it is.

Prefect resolves ``{{ $PWD }}``-style placeholders of pull steps when ``prefect deploy`` runs,
so they bake the deploying machine's path into the deployment. This step is resolved on the
worker instead, when the run starts: the flow-run process runs the worker's Python, whose
environment has this project installed editable from a checkout (``uv sync``), and this
module's own location names that checkout. Any clean checkout on any machine therefore runs
its own code, with relative settings (``data/...``, ``.env``) under it.

``SODTRACK_PROJECT_DIR`` on the worker (or a ``directory`` input in ``prefect.yaml``)
overrides it, e.g. for a project installed as a wheel rather than from a checkout.
"""

from __future__ import annotations

import os
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[1]
"""The checkout this module was imported from (``tasks/`` is at its top)."""


def set_project_directory(directory: str | None = None) -> dict[str, str]:
    """Change to the project directory; returns it as the step's output ``directory``."""
    target = Path(directory or os.environ.get("SODTRACK_PROJECT_DIR") or CHECKOUT)
    if not (target / "flows").is_dir():
        raise FileNotFoundError(
            f"{target} is not a checkout of the pipeline (no flows/): set SODTRACK_PROJECT_DIR "
            "on the worker to the checkout the flows should run from"
        )
    os.chdir(target)
    return {"directory": str(target)}
