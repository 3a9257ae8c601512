"""Handlers of the contract's operations, one module per area, registered by operation id
(``sodtrack.contract.operations``). ``HANDLERS`` must cover every operation: the app refuses
to start otherwise."""

from __future__ import annotations

from sodtrack.simulator.handlers import bookings, catalog, leads, projects, token
from sodtrack.simulator.handlers.common import Handler

HANDLERS: dict[str, Handler] = {
    **token.HANDLERS,
    **catalog.HANDLERS,
    **bookings.HANDLERS,
    **projects.HANDLERS,
    **leads.HANDLERS,
}
