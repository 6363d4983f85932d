"""The bound on Prefect requests in flight: slow start, halving on push-back, no return to a refused bound."""

from __future__ import annotations

from tasks.adapters.prefect import Gate, retry_after


def succeed(gate: Gate, times: int) -> None:
    for _ in range(times):
        gate.success()


def test_the_gate_starts_at_one_and_widens_to_its_ceiling_while_requests_succeed() -> None:
    gate = Gate(3)
    assert gate.limit == 1
    succeed(gate, 4)
    assert gate.limit == 2
    succeed(gate, 8)
    assert gate.limit == 3
    succeed(gate, 100)
    assert gate.limit == 3


def test_a_push_back_halves_the_bound_and_it_never_widens_to_a_refused_bound_again() -> None:
    gate = Gate(8)
    succeed(gate, 4 + 8 + 12)
    assert gate.limit == 4
    gate.push_back()
    assert (gate.limit, gate.ceiling) == (2, 3)
    succeed(gate, 1000)
    assert gate.limit == 3
    gate.push_back()
    succeed(gate, 1000)
    assert (gate.limit, gate.ceiling) == (2, 2)
    gate.push_back()
    succeed(gate, 1000)
    assert (gate.limit, gate.ceiling) == (1, 1), "settled where the server stops refusing"


def test_without_retry_after_the_wait_starts_short_and_doubles_to_a_cap() -> None:
    waits = [retry_after(None, attempt) for attempt in range(10)]
    assert 0.05 <= waits[0] <= 0.075
    assert all(0.05 * 2**n <= waits[n] <= 0.075 * 2**n for n in range(6)), waits
    assert all(wait == 5.0 for wait in waits[7:]), "capped"
