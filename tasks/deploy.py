"""The steps of ``prefect.yaml``: the deployment's version, and each run from its checkout.

Version (build step :func:`revision`, run by ``prefect deploy`` on the deploying machine):
the checkout's git revision (``git describe --always --dirty``, e.g. ``a1b2c3d4e5f6`` or
``a1b2c3d4e5f6-dirty``; the package's version when the checkout is not a git one) becomes
each deployment's ``version``, so the UI and ``prefect deployment inspect`` say which code a
deployment was made from. The pull step compares it with the worker's checkout when a run
starts and logs a warning when they differ: a worker whose checkout is not the deployed
revision still runs (its own code), but says so in the run's first lines.

Run from the checkout (pull step :func:`set_project_directory`):

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

import logging
import os
import subprocess
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[1]
"""The checkout this module was imported from (``tasks/`` is at its top)."""


log = logging.getLogger("sodtrack.deploy")


def checkout_revision(checkout: Path = CHECKOUT) -> str:
    """``git describe --always --dirty --abbrev=12`` of the checkout, else the package's
    version (``sodtrack-<version>``) when it is not a git checkout (or git is missing)."""
    try:
        done = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=12", "--exclude=*"],  # noqa: S607
            cwd=checkout,
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
        return done.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        from importlib.metadata import PackageNotFoundError, version

        try:
            return f"sodtrack-{version('sodtrack-pipeline')}"
        except PackageNotFoundError:
            return "unknown"


def revision() -> dict[str, str]:
    """Build step: ``{{ revision.version }}`` is the deploying checkout's revision."""
    return {"version": checkout_revision()}


def set_project_directory(
    directory: str | None = None, expected_revision: str | None = None
) -> dict[str, str]:
    """Change to the project directory; returns it as the step's output ``directory``.

    ``expected_revision``: the deployment's version (templated at deploy time); a worker
    checkout at another revision is logged as a warning, and the run goes on with it.
    """
    target = Path(directory or os.environ.get("SODTRACK_PROJECT_DIR") or CHECKOUT)
    if not (target / "flows").is_dir():
        raise FileNotFoundError(
            f"{target} is not a checkout of the pipeline (no flows/): set SODTRACK_PROJECT_DIR "
            "on the worker to the checkout the flows should run from"
        )
    os.chdir(target)
    if expected_revision:
        here = checkout_revision(target)
        if here != expected_revision:
            log.warning(
                "this worker's checkout %s is at %s, the deployment was made from %s: the run "
                "uses the worker's code (update the checkout, or deploy again from it)",
                target,
                here,
                expected_revision,
            )
    return {"directory": str(target)}
