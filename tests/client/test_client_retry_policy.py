"""RetryPolicy: full jitter, Retry-After floor, attempts and budget (pure, injected random)."""

from __future__ import annotations

import pytest

from sodtrack.client.retry import RetryPolicy, parse_retry_after


def policy(r: float = 1.0, **kw: float) -> RetryPolicy:
    return RetryPolicy(random=lambda: r, **kw)  # type: ignore[arg-type]


def test_backoff_doubles_up_to_the_cap() -> None:
    p = policy(1.0, base_delay_s=0.5, max_delay_s=3.0, max_attempts=10)
    assert [p.next_delay(n, None, 0.0) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_full_jitter_scales_the_window() -> None:
    p = policy(0.25, base_delay_s=1.0, max_delay_s=100.0, max_attempts=10)
    assert p.next_delay(3, None, 0.0) == pytest.approx(1.0)  # 0.25 * 4
    assert policy(0.0).next_delay(1, None, 0.0) == 0.0


def test_retry_after_is_a_floor_not_a_ceiling() -> None:
    p = policy(0.1, base_delay_s=1.0, max_delay_s=100.0, max_attempts=10)
    assert p.next_delay(1, 2.0, 0.0) == 2.0  # jitter 0.1 < Retry-After
    assert p.next_delay(6, 2.0, 0.0) == pytest.approx(3.2)  # jitter 0.1 * 32 > Retry-After


def test_gives_up_after_max_attempts() -> None:
    p = policy(max_attempts=3)
    assert p.next_delay(2, None, 0.0) is not None
    assert p.next_delay(3, None, 0.0) is None
    assert "max_attempts=3" in p.give_up_reason(3, None, 0.0)


def test_gives_up_when_the_wait_would_exceed_the_budget() -> None:
    p = policy(1.0, base_delay_s=1.0, budget_s=10.0, max_attempts=100)
    assert p.next_delay(1, None, 8.0) == 1.0
    assert p.next_delay(1, None, 9.5) is None
    assert p.next_delay(1, 5.0, 6.0) is None  # Retry-After counts against the budget
    assert "budget" in p.give_up_reason(1, None, 9.5)


def test_an_excessive_retry_after_gives_up_at_once() -> None:
    p = policy(max_retry_after_s=30.0)
    assert p.next_delay(1, 31.0, 0.0) is None
    assert "Retry-After" in p.give_up_reason(1, 31.0, 0.0)


def test_single_attempt_policy_never_retries() -> None:
    assert policy(max_attempts=1).next_delay(1, None, 0.0) is None


def test_invalid_policies_are_refused() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="negative"):
        RetryPolicy(budget_s=-1)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("3", 3.0),
        (" 1 ", 1.0),
        ("0", 0.0),
        (None, None),
        ("soon", None),
        ("-1", None),
        ("nan", None),
        ("Wed, 21 Oct 2026 07:28:00 GMT", None),
    ],
)
def test_parse_retry_after(raw: str | None, expected: float | None) -> None:
    assert parse_retry_after(raw) == expected
