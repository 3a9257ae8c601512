"""The request engine: the client's one retry loop, around one HTTP attempt at a time.

Every call is a :class:`Plan`: a small state machine that says which request to send next
(:class:`ApiRequest`) and what a response means (done with a value, or go on with another step).
:meth:`Engine.run` drives it::

    loop:
        step = plan.next_step()
        token  = TokenManager.get()            (single-flight; a failed fetch is a transient
                                                failure of this step, or an AuthError)
        under the concurrency semaphore:
            wait for the rate limiter, send, count, observe X-RateLimit-*
        2xx                      -> plan.on_response: done, or next step without waiting
        2xx, body unreadable     -> (empty, cut short, not JSON, off the model: the plan's
                                    parse raises UnreadableResponse) a transient failure
                                    like a 5xx: ambiguous, so a create is reconciled
        401 invalid/expired      -> forget the token, retry once (a second 401 is an AuthError)
        other 4xx                -> plan.on_error: done (a 409 it can resolve), next step,
                                    or raise the classified error
        429 / 5xx / transport    -> plan.on_transient (a create switches to reconciliation),
                                    RetryPolicy.next_delay -> sleep, or raise RetryExhausted
                                    (a 429 without Retry-After waits at least
                                    RetryPolicy.rate_limited_default_s)

An error page (HTML, or any body that is not the error envelope) is classified by its status
alone: a 5xx is retried, a 4xx is the error its status says (``code="http_<status>"``). A
stalled answer ends in the HTTP client's read timeout (``Settings.request_timeout_s``), a
transport failure like a dropped connection. The stats count every retry by its cause
(``retry_causes``: the status, ``unreadable`` or the exception type) and unreadable answers by
operation (``unreadable``).

Because reconciliation of an ambiguous create (look the ``external_reference`` up, or fetch
the ``409``'s ``existing_id``) is just another step of the same plan, the lookups share the
create's attempt count and wait budget: there is exactly one retry layer, and a lookup that
fails transiently is retried by it like any other step.

A transport failure is *ambiguous* (the server may have acted on the request) unless the
connection was never made (``ConnectError``, ``ConnectTimeout``, ``PoolTimeout``); every 5xx
is ambiguous, a 429 never is (the contract does not count it).

Secrets: the engine never logs headers or bodies, builds its exceptions from status, error
code and message only (with the credential and every token redacted from the message), and
re-raises transport failures ``from None`` so that no ``httpx.Request`` (which carries the
``Authorization`` header) hangs off an exception chain.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import httpx
from pydantic import BaseModel, SecretStr, ValidationError

from sodtrack.client.auth import BearerToken, Credentials, IssuedToken, TokenManager
from sodtrack.client.clock import MonotonicClock, ServerClock, Sleep
from sodtrack.client.errors import (
    ApiError,
    AuthError,
    RetryExhausted,
    TokenUnavailable,
    TransientCause,
    UnreadableReason,
    UnreadableResponse,
    _EnvelopeError,
    _Transient,
    classify_error,
)
from sodtrack.client.ratelimit import RateLimiter
from sodtrack.client.retry import RetryPolicy, parse_retry_after
from sodtrack.client.stats import ClientStats
from sodtrack.contract.errors import AUTH_RETRY_CODES, RETRYABLE_STATUSES
from sodtrack.contract.limits import API_PREFIX, HEADER_REQUEST_ID, HEADER_RETRY_AFTER
from sodtrack.contract.models import ErrorBody, ErrorEnvelope, TokenRequest, TokenResponse
from sodtrack.contract.operations import Operation, operation

log = logging.getLogger("sodtrack.client")

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
_NEVER_RETRY = (httpx.UnsupportedProtocol, httpx.LocalProtocolError)
_JSON = {"Content-Type": "application/json"}


@dataclass(frozen=True, slots=True)
class ApiRequest:
    """One HTTP request of a plan."""

    op: Operation
    path_params: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, Any] | None = None
    content: bytes | None = None
    """A JSON body, already serialised."""
    files: Mapping[str, tuple[str, bytes, str]] | None = None
    data: Mapping[str, str] | None = None

    @classmethod
    def of(
        cls,
        op_id: str,
        path_params: Mapping[str, str] | None = None,
        *,
        params: Mapping[str, Any] | None = None,
        body: BaseModel | None = None,
        exclude_unset: bool = False,
    ) -> ApiRequest:
        content = None
        if body is not None:
            content = body.model_dump_json(
                exclude_none=not exclude_unset, exclude_unset=exclude_unset
            ).encode()
        return cls(operation(op_id), dict(path_params or {}), params, content)


@dataclass(frozen=True, slots=True)
class Done(Generic[T]):
    value: T


class Plan(Generic[T]):
    """A call as a state machine; subclasses override what they need."""

    label: str = "call"

    def next_step(self) -> ApiRequest:
        raise NotImplementedError

    def on_response(self, step: ApiRequest, response: httpx.Response) -> Done[T] | None:
        raise NotImplementedError

    def on_error(self, step: ApiRequest, error: _EnvelopeError) -> Done[T] | None:
        raise error

    def on_transient(self, step: ApiRequest, failure: _Transient) -> None:
        """A transient failure of ``step`` (before the wait)."""

    def may_retry(self, step: ApiRequest, failure: _Transient) -> bool:
        """Whether repeating is safe after this failure (False: give up at once)."""
        return True

    @property
    def may_have_committed(self) -> bool:
        return False


class SinglePlan(Plan[T]):
    """One request, retried as is: reads, and writes that are idempotent by nature (PATCH
    with absolute values, cancel)."""

    def __init__(self, step: ApiRequest, parse: Callable[[httpx.Response], T]) -> None:
        self.step = step
        self.parse = parse
        self.label = step.op.id

    def next_step(self) -> ApiRequest:
        return self.step

    def on_response(self, step: ApiRequest, response: httpx.Response) -> Done[T] | None:
        return Done(self.parse(response))


def parse_model(response: httpx.Response, model: type[M], operation_id: str) -> M:
    """Validate a success body, or raise :class:`UnreadableResponse` (transient: the engine
    retries it like a 5xx). Its reason tells an empty body, a body that is not JSON (cut
    short, an HTML page) and JSON off the model; its message names locations and error types
    only (never input values), and it is raised outside the ``except`` block so that the
    ``ValidationError`` (which holds the input) is not even its ``__context__``."""
    content = response.content
    if not content.strip():
        raise UnreadableResponse(
            operation=operation_id, status=response.status_code, reason="empty"
        )
    problems: list[Any] = []
    try:
        return model.model_validate_json(content)
    except ValidationError as exc:
        problems = exc.errors()
    reason: UnreadableReason = (
        "not_json" if any(e["type"] == "json_invalid" for e in problems) else "off_model"
    )
    detail = ""
    if reason == "off_model":
        detail = f"does not match {model.__name__}: " + "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '<body>'}: {e['type']}" for e in problems[:5]
        )
    raise UnreadableResponse(
        operation=operation_id, status=response.status_code, reason=reason, detail=detail
    )


def _error_body(response: httpx.Response) -> ErrorBody | None:
    try:
        return ErrorEnvelope.model_validate_json(response.content).error
    except ValidationError:
        return None


class _TransientFailure(Exception):
    """Internal: a token fetch failed transiently (carries the failure record)."""

    def __init__(self, failure: _Transient) -> None:
        super().__init__(failure.label)
        self.failure = failure


class Redactor:
    """Replaces known secrets (the client secret, every token issued) in text."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()

    def add(self, secret: str) -> None:
        if len(secret) >= 4:
            self._secrets.add(secret)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, "[redacted]")
        return text


class Engine:
    """Sends requests for plans: auth, concurrency bound, rate limit, one retry loop, stats."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        credentials: Credentials,
        retry: RetryPolicy,
        limiter: RateLimiter,
        clock: MonotonicClock,
        sleep: Sleep,
        max_concurrency: int,
        token_margin_s: float,
        stats: ClientStats,
        country: str | None = None,
        server_clock: ServerClock | None = None,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self.http = http
        self.root = base_url.rstrip("/") + API_PREFIX
        self.credentials = credentials
        self.retry = retry
        self.limiter = limiter
        self.clock = clock
        self.sleep = sleep
        self.stats = stats
        self.server_clock = server_clock if server_clock is not None else ServerClock(clock)
        self.semaphore = asyncio.Semaphore(max_concurrency)
        self.max_concurrency = max_concurrency
        self.in_flight = 0
        self.redact = Redactor()
        self.redact.add(credentials.client_secret.get_secret_value())
        self.tokens = TokenManager(
            self._fetch_token,
            clock=clock,
            margin_s=token_margin_s,
            country=country,
            issuer=httpx.URL(self.root).netloc.decode("ascii", "replace") or self.root,
        )

    def __repr__(self) -> str:
        return f"Engine(root={self.root!r}, client_id={self.credentials.client_id!r})"

    # ------------------------------------------------------------------ one HTTP attempt

    async def _send(self, step: ApiRequest, token: BearerToken | None) -> httpx.Response:
        op = step.op
        url = self.root + op.url(**step.path_params)
        headers: dict[str, str] = {}
        if token is not None:
            headers["Authorization"] = token.authorization()
        if step.content is not None:
            headers.update(_JSON)
        async with self.semaphore:
            waited = await self.limiter.acquire()
            if waited > 0:
                self.stats.limiter_wait_s += waited
            self.in_flight += 1
            started = self.clock()
            try:
                response = await self.http.request(
                    op.method,
                    url,
                    params=dict(step.params) if step.params else None,
                    content=step.content,
                    files=step.files,
                    data=step.data,
                    headers=headers,
                )
            except httpx.TransportError as exc:
                self.stats.count_request(op.id, type(exc).__name__)
                log.debug(
                    "%s %s %s -> %s after %.3fs",
                    op.id,
                    op.method,
                    op.path,
                    type(exc).__name__,
                    self.clock() - started,
                )
                raise
            finally:
                self.in_flight -= 1
        self.limiter.observe(response.headers, in_flight=self.in_flight)
        bucket = self.limiter.bucket
        self.stats.rate_limit_per_s = bucket.rate if bucket.active else None
        self.stats.rate_limit_burst = bucket.capacity
        self.server_clock.observe(response.headers.get("date"))
        if response.status_code == 429:
            self.limiter.on_rate_limited()
        self.stats.count_request(op.id, str(response.status_code))
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "%s %s %s -> %d in %.3fs (%s)",
                op.id,
                op.method,
                response.request.url.path,
                response.status_code,
                self.clock() - started,
                response.headers.get(HEADER_REQUEST_ID, "-"),
            )
        return response

    # ------------------------------------------------------------------ token

    async def _fetch_token(self) -> IssuedToken:
        """One token request (no retry here: the caller's loop retries)."""
        op = operation("issue_token")
        body = TokenRequest(
            client_id=self.credentials.client_id,
            client_secret=self.credentials.client_secret.get_secret_value(),
        )
        step = ApiRequest(op, content=body.model_dump_json(exclude_none=True).encode())
        requested_at = self.clock()
        self.stats.token_fetches += 1
        # Exceptions are raised outside the ``except`` blocks: the httpx exception (whose
        # ``.request`` carries the secret in its body) must not become their __context__.
        name = ""
        never = False
        not_sent = False
        try:
            response = await self._send(step, None)
        except httpx.TransportError as exc:
            name = type(exc).__name__
            never = isinstance(exc, _NEVER_RETRY)
            not_sent = isinstance(exc, _NOT_SENT)
        if name:
            if never:
                raise ApiError(f"{op.id}: {name}", operation=op.id)
            cause: TransientCause = "not_connected" if not_sent else "connection_lost"
            raise _TransientFailure(_Transient(f"{op.id}:{name}", cause=cause))
        status = response.status_code
        if status in RETRYABLE_STATUSES:
            retry_after = parse_retry_after(response.headers.get(HEADER_RETRY_AFTER))
            raise _TransientFailure(_Transient(f"{op.id}:{status}", retry_after))
        if not 200 <= status < 300:
            error = classify_error(status, _error_body(response), operation=op.id)
            raise self._scrubbed(error)
        unreadable: UnreadableResponse | None = None
        try:
            parsed = parse_model(response, TokenResponse, op.id)
        except UnreadableResponse as exc:
            unreadable = exc
        if unreadable is not None:
            self.stats.unreadable[op.id] += 1
            raise _TransientFailure(
                _Transient(
                    "unreadable", ambiguous=False, detail=unreadable.message, cause="unreadable"
                )
            )
        self.redact.add(parsed.access_token)
        log.debug("%s: new token, expires_in=%ss", op.id, parsed.expires_in)
        return IssuedToken(SecretStr(parsed.access_token), float(parsed.expires_in), requested_at)

    async def authenticate(self) -> None:
        """Get a token now, one attempt, no retry: the preflight's check of the base URL,
        the credentials and the token's country. A transient failure is a
        :class:`RetryableError` naming it; the others are raised as the token fetch raises
        them (``AuthError``, ``TokenCountryMismatch``, ``NotFoundError``...)."""
        failure: _Transient | None = None
        try:
            await self.tokens.get()
        except _TransientFailure as exc:
            failure = exc.failure
        if failure is not None:
            raise TokenUnavailable(what=failure.label.rpartition(":")[2], cause=failure.cause)

    def _scrubbed(self, error: _EnvelopeError) -> _EnvelopeError:
        clean = self.redact(error.message)
        if clean != error.message:
            error.message = clean
            error.api_message = self.redact(error.api_message)
            error.args = (clean,)
        return error

    # ------------------------------------------------------------------ the retry loop

    async def run(self, plan: Plan[T]) -> T:
        """Drive ``plan`` to its value; the single place where failures are retried."""
        started = self.clock()
        failures = 0
        waited = 0.0
        seen: list[str] = []
        refreshed_after_401 = False
        while True:
            step = plan.next_step()
            failure: _Transient | None = None
            token: BearerToken | None = None
            try:
                if step.op.scope is not None:
                    token = await self.tokens.get()
                response = await self._send(step, token)
            except _TransientFailure as exc:
                failure = exc.failure
            except httpx.TransportError as exc:
                # Only the type name survives: the exception's ``.request`` holds the token.
                failure = _Transient(type(exc).__name__, ambiguous=not isinstance(exc, _NOT_SENT))
                if isinstance(exc, _NEVER_RETRY):
                    failure = _Transient(type(exc).__name__, fatal=True)
            else:
                status = response.status_code
                if 200 <= status < 300:
                    refreshed_after_401 = False
                    unreadable: UnreadableResponse | None = None
                    done: Done[T] | None = None
                    try:
                        done = plan.on_response(step, response)
                    except UnreadableResponse as exc:
                        unreadable = exc
                    if unreadable is None:
                        if done is not None:
                            return done.value
                        continue
                    # Read like a 5xx: the server acted (a create is reconciled), the answer
                    # was lost on the way.
                    self.stats.unreadable[step.op.id] += 1
                    failure = _Transient("unreadable", ambiguous=True, detail=unreadable.message)
                elif status in RETRYABLE_STATUSES:
                    retry_after = parse_retry_after(response.headers.get(HEADER_RETRY_AFTER))
                    if status == 429 and retry_after is None:
                        retry_after = self.retry.rate_limited_default_s
                    failure = _Transient(str(status), retry_after, ambiguous=status != 429)
                else:
                    body = _error_body(response)
                    if (
                        status == 401
                        and token is not None
                        and body is not None
                        and body.code in AUTH_RETRY_CODES
                        and not refreshed_after_401
                    ):
                        refreshed_after_401 = True
                        self.tokens.invalidate(token)
                        self.stats.token_refreshes_on_401 += 1
                        log.info(
                            "%s: token refused (%s), fetching a new one", step.op.id, body.code
                        )
                        continue
                    refreshed_after_401 = False
                    error = self._scrubbed(classify_error(status, body, operation=step.op.id))
                    if isinstance(error, AuthError):
                        raise error
                    done = plan.on_error(step, error)
                    if done is not None:
                        return done.value
                    continue

            assert failure is not None  # every other branch returned, continued or raised
            if failure.fatal:
                raise ApiError(f"{step.op.id}: {failure.label}", operation=step.op.id)
            failures += 1
            seen.append(failure.label)
            plan.on_transient(step, failure)
            elapsed = self.clock() - started
            safe = plan.may_retry(step, failure)
            delay = self.retry.next_delay(failures, failure.retry_after, elapsed) if safe else None
            if delay is None:
                reason = (
                    self.retry.give_up_reason(failures, failure.retry_after, elapsed)
                    if safe
                    else "not safe to repeat: no external_reference to reconcile by"
                )
                if failure.detail:
                    reason += f"; last: {failure.detail}"
                self.stats.gave_up[plan.label] += 1
                exhausted = RetryExhausted(
                    operation=plan.label,
                    attempts=failures,
                    seen=seen,
                    waited_s=waited,
                    elapsed_s=elapsed,
                    reason=reason,
                    may_have_committed=plan.may_have_committed,
                )
                log.warning("%s", exhausted.message)
                raise exhausted
            self.stats.retries[plan.label] += 1
            self.stats.retry_causes[failure.label] += 1
            log.info(
                "%s: %s on %s, retry %d in %.2fs",
                plan.label,
                failure.label,
                step.op.id,
                failures,
                delay,
            )
            if delay > 0:
                await self.sleep(delay)
                waited += delay
                self.stats.retry_wait_s += delay
