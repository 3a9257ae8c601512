"""The steps of ``prefect.yaml``: the deployment's version, and each run from its checkout.

Version (build step :func:`revision`, run by ``prefect deploy`` on the deploying machine):
the checkout's git revision (``git describe --always --dirty``, e.g. ``a1b2c3d4e5f6`` or
``a1b2c3d4e5f6-dirty``; the package's version when the checkout is not a git one) becomes
each deployment's ``version``, so the UI and ``prefect deployment inspect`` say which code a
deployment was made from. The pull step compares it with the worker's checkout when a run
starts and logs a warning when they differ: a worker whose checkout is not the deployed
revision still runs (its own code), but says so in the run's first lines.

Where a run works (pull step :func:`set_project_directory`):

The deployments name their flows by module path (``flows.nightly.nightly``), so a run imports
them from the worker's Python environment (this project installed from a checkout with ``uv
sync``, or as a wheel), read only, wherever the run works. The pull step, resolved on the
worker when the run starts, picks that working directory: ``SODTRACK_PROJECT_DIR`` on the
worker when set (a platform team gives each worker a directory of its own, and nothing is
written in the checkout), else the checkout this module was imported from, as on a single
machine. Relative settings (``data/...``) and ``.env`` are relative to it. (Prefect resolves
``{{ $PWD }}``-style placeholders of pull steps when ``prefect deploy`` runs, so they would
bake the deploying machine's path into the deployment: nothing absolute is stored.)
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
    """Change to the run's working directory; returns it as the step's output ``directory``.

    ``directory`` (an input in ``prefect.yaml``), else ``SODTRACK_PROJECT_DIR``, else the
    checkout. ``expected_revision``: the deployment's version (templated at deploy time); a
    worker whose code is at another revision is logged as a warning, and the run goes on.
    """
    target = Path(directory or os.environ.get("SODTRACK_PROJECT_DIR") or CHECKOUT)
    if not target.is_dir():
        raise FileNotFoundError(
            f"{target} is not a directory: set SODTRACK_PROJECT_DIR on the worker to the "
            "directory its flow runs should work in"
        )
    os.chdir(target)
    if expected_revision:
        here = checkout_revision(CHECKOUT)
        if here != expected_revision:
            log.warning(
                "this worker's checkout %s is at %s, the deployment was made from %s: the run "
                "uses the worker's code (update the checkout, or deploy again from it)",
                CHECKOUT,
                here,
                expected_revision,
            )
    return {"directory": str(target)}
