"""The local platform restarts a dead process as Kubernetes restarts a pod: 1 s, 2 s, 4 s ...
capped, and from 1 s again once it has run a while."""

from mvno.devstack.processes import RestartPolicy, Restarts


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


POLICY = RestartPolicy(first_delay_seconds=1, max_delay_seconds=8, reset_after_seconds=60)


def test_the_delay_doubles_with_each_crash_in_a_row_up_to_the_cap():
    assert [POLICY.delay(n) for n in range(1, 7)] == [1, 2, 4, 8, 8, 8]


def test_a_restart_is_due_only_once_its_delay_has_passed():
    clock = Clock()
    restarts = Restarts(POLICY, clock)
    restarts.started("orders-provision")
    clock.now += 5
    assert restarts.died("orders-provision") == 1
    assert restarts.pending("orders-provision")
    assert restarts.due() == []
    clock.now += 0.5
    assert restarts.due() == []
    clock.now += 0.5
    assert restarts.due() == ["orders-provision"]
    restarts.started("orders-provision")
    assert not restarts.pending("orders-provision")
    assert restarts.due() == []


def test_crashing_again_soon_waits_longer_and_running_a_while_starts_over():
    clock = Clock()
    restarts = Restarts(POLICY, clock)
    delays = []
    for _ in range(5):
        restarts.started("catalog")
        clock.now += 2  # dies soon after each start
        delays.append(restarts.died("catalog"))
        clock.now += delays[-1]
    assert delays == [1, 2, 4, 8, 8]
    restarts.started("catalog")
    clock.now += 60  # healthy for a while, then dies: treated as a first crash
    assert restarts.died("catalog") == 1
    assert restarts.crashes("catalog") == 1


def test_each_process_has_its_own_backoff():
    clock = Clock()
    restarts = Restarts(POLICY, clock)
    for name in ("orders", "billing-sync-work"):
        restarts.started(name)
    clock.now += 1
    assert restarts.died("orders") == 1
    clock.now += 1
    restarts.started("orders")
    assert restarts.died("orders") == 2
    assert restarts.died("billing-sync-work") == 1
