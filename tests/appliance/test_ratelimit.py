"""The token buckets the box's diner API and the relay share (appliance/ratelimit.py), on a clock the test moves."""

from __future__ import annotations

import pytest

from appliance.ratelimit import RateLimiter, retry_after


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_minutes_worth_then_one_per_refill_per_key():
    clock = Clock()
    limiter = RateLimiter(60, clock=clock)
    assert [limiter.hit("a") for _ in range(60)] == [0.0] * 60
    assert limiter.hit("a") == pytest.approx(1.0)  # one token a second at 60 a minute
    assert limiter.hit("b") == 0.0  # another key has its own bucket
    clock.now += 1.0
    assert limiter.hit("a") == 0.0 and limiter.hit("a") == pytest.approx(1.0)


def test_a_charge_goes_below_zero_so_the_penalty_cannot_be_dodged():
    clock = Clock()
    limiter = RateLimiter(60, clock=clock)
    limiter.charge("a", 50)
    assert [limiter.hit("a") for _ in range(10)] == [0.0] * 10
    limiter.charge("a", 9)  # taken even though the bucket is empty
    assert limiter.hit("a") == pytest.approx(10.0)  # 9 below zero: ten seconds to one token
    clock.now += 10.0
    assert limiter.hit("a") == 0.0
    limiter.charge("a", 1000)  # at most a minute's worth below zero
    assert limiter.hit("a") == pytest.approx(61.0)
    assert retry_after(limiter.hit("a")) == "61"
    assert limiter.hit("b") == 0.0


def test_a_limit_of_zero_takes_nothing():
    limiter = RateLimiter(0)
    limiter.charge("a", 100)
    assert all(limiter.hit("a") == 0.0 for _ in range(1000))


def test_full_buckets_are_forgotten_past_max_keys_and_a_charged_one_is_kept():
    clock = Clock()
    limiter = RateLimiter(60, clock=clock, max_keys=4)
    limiter.charge("penalised", 60)
    for key in ("x", "y", "z"):
        limiter.hit(key)
    clock.now += 5.0  # x, y and z are full again; "penalised" is not
    limiter.hit("w")  # five keys: the full ones go, the charged one stays charged
    assert sorted(limiter._buckets) == ["penalised", "w"]
    assert limiter.hit("penalised") == 0.0 and limiter._buckets["penalised"][0] == pytest.approx(4.0)
