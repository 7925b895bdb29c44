"""A token bucket for per-connection flood control."""

from __future__ import annotations

from twisted.internet.interfaces import IReactorTime


class TokenBucket:
    """
    C{rate} tokens a second, at most C{burst} saved up; each line costs one.
    A C{rate} of 0 (or less) never refuses: the bucket then only notes when
    a line came (L{last}).

    @ivar warned: set by the owner once it has logged a refusal; cleared
        whenever a token is taken again.
    @ivar told: when the owner last told the client it was refused.
    @ivar dropped: how many lines the owner dropped for want of a token.
    """

    __slots__ = ("_clock", "_rate", "_burst", "_tokens", "_stamp", "warned", "told", "dropped")

    def __init__(self, clock: IReactorTime, rate: float, burst: int) -> None:
        self._clock = clock
        self._rate = rate
        self._burst = float(burst)
        self._tokens = float(burst)
        self._stamp = clock.seconds()
        self.warned = False
        self.told = float("-inf")
        self.dropped = 0

    @property
    def last(self) -> float:
        """When a token was last asked for (C{/whois}'s idle time)."""
        return self._stamp

    def take(self) -> bool:
        """Spend one token; C{False} (and nothing spent) when there is none."""
        now = self._clock.seconds()
        if self._rate <= 0:  # no limit: the bucket only dates the line (/whois)
            self._stamp = now
            return True
        tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now
        if tokens < 1.0:
            self._tokens = tokens
            return False
        self._tokens = tokens - 1.0
        self.warned = False
        return True
