"""``POST /auth/token``: shape → scope vocabulary (422) → credentials (401)."""

from __future__ import annotations

from sodtrack.contract import models as m
from sodtrack.simulator.handlers.common import Ctx, Handler, Reply
from sodtrack.simulator.validation import parse_body


async def issue_token(ctx: Ctx) -> Reply:
    body = parse_body(m.TokenRequest, ctx.raw)
    issued = ctx.sim.auth.issue(body.client_id, body.client_secret, body.scope)
    ctx.committed("token")
    return ctx.reply(issued)


HANDLERS: dict[str, Handler] = {"issue_token": issue_token}
