"""Retry policy: which failures to retry, and how long to wait (pure, no I/O).

Owns `RetryPolicy` and the delay computation. The I/O drivers that actually sleep and
re-send live in `allm._http.transport` (decisions) and `allm._http.adapter` (shells).
A streaming call is retried only while no event has reached the caller.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from .errors import AllmError, ValidationError

__all__ = ["RetryPolicy", "DEFAULT_RETRY", "resolve_retry", "next_delay"]

DEFAULT_RETRY_ON: frozenset[int | str] = frozenset(
    {408, 409, 429, 500, 502, 503, 504, 529, "timeout", "network_error",
     "rate_limited", "provider_unavailable", "overloaded"}
)


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """Exponential backoff with additive jitter.

    - `max_attempts`: total tries including the first (1 = no retry).
    - `base_delay` / `max_delay` / `jitter`: seconds.
    - `retry_on`: HTTP statuses and/or error reasons that are retried.
    - `respect_retry_after`: wait what the provider asked (`Retry-After`,
      `retry-after-ms`, Google `retryDelay`) instead of the backoff, capped at
      `max_retry_after`.
    """

    max_attempts: int = 3
    base_delay: float = 0.5
    max_delay: float = 30.0
    jitter: float = 0.25
    retry_on: frozenset[int | str] = field(default_factory=lambda: DEFAULT_RETRY_ON)
    respect_retry_after: bool = True
    max_retry_after: float = 60.0

    def should_retry(self, error: AllmError, attempt: int) -> bool:
        """True if `error` on attempt number `attempt` (1-based) should be retried."""
        if attempt >= self.max_attempts:
            return False
        # A provider can mark a failure as permanent even when its status is usually
        # transient (OpenAI's 429 `insufficient_quota`: retrying never helps).
        if error.metadata.get("retryable") is False:
            return False
        status = getattr(error, "status", None)
        return error.reason in self.retry_on or (status is not None and status in self.retry_on)

    def delay(self, error: AllmError, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before attempt `attempt + 1`."""
        jitter: float = (rng or random).uniform(0.0, self.jitter) if self.jitter > 0 else 0.0
        retry_after = getattr(error, "retry_after", None)
        if self.respect_retry_after and retry_after is not None and retry_after >= 0:
            return min(float(retry_after), self.max_retry_after) + jitter
        backoff = min(self.max_delay, self.base_delay * (2.0 ** (attempt - 1)))
        return backoff + jitter


def next_delay(
    policy: RetryPolicy,
    error: AllmError,
    attempt: int,
    *,
    remaining: float | None = None,
    on_retry: Any = None,
) -> float | None:
    """The retry decision every driver shares (HTTP chat/fetch runs, image calls):
    seconds to sleep before attempt `attempt + 1`, or None to surface `error`.
    None when the policy says no, or when waiting would overrun the `remaining`
    seconds of the overall deadline. Calls ``on_retry(attempt, delay, error)``
    before returning a delay."""
    if not policy.should_retry(error, attempt):
        return None
    delay = max(0.0, policy.delay(error, attempt))
    if remaining is not None and delay >= remaining:
        return None
    if on_retry is not None:
        on_retry(attempt, delay, error)
    return delay


DEFAULT_RETRY = RetryPolicy()
NO_RETRY = RetryPolicy(max_attempts=1)

_FIELDS = {"max_attempts", "base_delay", "max_delay", "jitter", "retry_on",
           "respect_retry_after", "max_retry_after"}


def resolve_retry(value: RetryPolicy | Mapping[str, Any] | bool | None) -> RetryPolicy:
    """Turn what users pass as `retry=` into a policy.

    None / True -> default; False -> no retry; a mapping -> default with those fields
    replaced (unknown keys raise `ValidationError` naming them).
    """
    if value is None or value is True:
        return DEFAULT_RETRY
    if value is False:
        return NO_RETRY
    if isinstance(value, RetryPolicy):
        return value
    if isinstance(value, Mapping):
        unknown = set(value) - _FIELDS
        if unknown:
            raise ValidationError(
                "invalid_params", errors=[(f"retry.{k}", "unknown_field") for k in sorted(unknown)]
            )
        kw = dict(value)
        if "retry_on" in kw:
            kw["retry_on"] = frozenset(kw["retry_on"])
        if int(kw.get("max_attempts", 1)) < 1:
            kw["max_attempts"] = 1
        return replace(DEFAULT_RETRY, **kw)
    raise ValidationError("invalid_params", errors=[("retry", "invalid_type")])
