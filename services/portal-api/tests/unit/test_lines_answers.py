"""The rendered "my lines" answers a replica keeps: what may be kept, for how long, and what drops
it (the read model's announcements, as the listener hands them over)."""

from __future__ import annotations

import json

from mvno.portal_api.live import Announcements
from mvno.portal_api.screens import LinesAnswers


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def trusted_answers(clock: Clock, *, max_entries: int = 10, renew: float = 0) -> LinesAnswers:
    answers = LinesAnswers(max_entries=max_entries, renew_seconds=renew, clock=clock)
    answers.trusted = True
    return answers


def test_an_answer_is_kept_for_its_seconds_and_no_longer() -> None:
    clock = Clock()
    answers = trusted_answers(clock)
    answers.keep("alice", b"A", seconds=30, since=answers.changes)
    clock.now += 29.9
    assert answers.get("alice") == b"A"
    assert answers.get("bob") is None
    clock.now += 0.1
    assert answers.get("alice") is None
    assert len(answers) == 0


def test_nothing_is_kept_or_answered_while_announcements_are_not_heard() -> None:
    clock = Clock()
    answers = trusted_answers(clock)
    answers.keep("alice", b"A", seconds=30, since=answers.changes)
    answers.trusted = False
    assert answers.get("alice") is None
    answers.keep("bob", b"B", seconds=30, since=answers.changes)
    answers.trusted = True
    assert answers.get("bob") is None


def test_a_change_drops_that_customers_answer_and_an_unknown_one_drops_all() -> None:
    clock = Clock()
    answers = trusted_answers(clock)
    for customer in ("alice", "bob", "carol"):
        answers.keep(customer, customer.encode(), seconds=30, since=answers.changes)
    answers.changed("alice")
    assert answers.get("alice") is None
    assert answers.get("bob") == b"bob"
    answers.changed(None)
    assert answers.get("bob") is None
    assert answers.get("carol") is None


def test_an_answer_read_while_a_change_was_announced_is_not_kept() -> None:
    clock = Clock()
    answers = trusted_answers(clock)
    mark = answers.changes
    answers.changed("someone-else")  # announced between the read and keeping its answer
    answers.keep("alice", b"maybe from before", seconds=30, since=mark)
    assert answers.get("alice") is None


def test_answers_never_kept_for_no_time_or_when_none_may_be_kept() -> None:
    clock = Clock()
    answers = trusted_answers(clock)
    answers.keep("alice", b"A", seconds=0, since=answers.changes)
    assert answers.get("alice") is None
    none_kept = trusted_answers(clock, max_entries=0)
    none_kept.keep("alice", b"A", seconds=30, since=none_kept.changes)
    assert none_kept.get("alice") is None


def test_the_least_recently_viewed_go_first() -> None:
    clock = Clock()
    answers = trusted_answers(clock, max_entries=2)
    answers.keep("alice", b"A", seconds=30, since=answers.changes)
    answers.keep("bob", b"B", seconds=30, since=answers.changes)
    assert answers.get("alice") == b"A"  # viewed: bob is now the least recent
    answers.keep("carol", b"C", seconds=30, since=answers.changes)
    assert answers.get("bob") is None
    assert answers.get("alice") == b"A"
    assert answers.get("carol") == b"C"


def test_one_view_renews_an_answer_near_its_end_while_the_others_get_it() -> None:
    clock = Clock()
    answers = trusted_answers(clock, renew=5)
    answers.keep("alice", b"old", seconds=30, since=answers.changes)
    clock.now += 25
    assert answers.get("alice") is None  # this view reads anew
    assert answers.get("alice") == b"old"  # the others meanwhile
    answers.keep("alice", b"new", seconds=30, since=answers.changes)
    clock.now += 4
    assert answers.get("alice") == b"new"


def test_a_renewal_that_kept_nothing_lets_a_later_view_try_again() -> None:
    clock = Clock()
    answers = trusted_answers(clock, renew=5)
    answers.keep("alice", b"old", seconds=30, since=answers.changes)
    clock.now += 26
    assert answers.get("alice") is None
    answers.renewed("alice")  # billing-sync did not answer, say
    assert answers.get("alice") is None  # the next view tries again
    assert answers.get("alice") == b"old"
    clock.now += 4
    assert answers.get("alice") is None  # and never past its end


def test_announcements_drop_the_answers_of_the_customer_they_name() -> None:
    clock = Clock()
    answers = LinesAnswers(max_entries=10, clock=clock)
    catalogue_dropped: list[bool] = []

    def trust(listening: bool) -> None:
        answers.trusted = listening

    announcements = Announcements(
        on_catalogue_changed=lambda: catalogue_dropped.append(True),
        on_customer_changed=answers.changed,
        on_listening=trust,
    )
    announcements.listening = True
    for customer in ("alice", "bob", "carol", "dave"):
        answers.keep(customer, customer.encode(), seconds=30, since=answers.changes)

    announcements.heard(json.dumps({"topic": "catalog"}))
    assert catalogue_dropped == [True]
    assert len(answers) == 4
    for topic, customer in (("line", "alice"), ("balance", "bob"), ("order", "carol")):
        announcements.heard(
            json.dumps({"topic": topic, "customer_id": customer, "subscription_id": "x"})
        )
        assert answers.get(customer) is None
    assert answers.get("dave") == b"dave"
    announcements.heard(json.dumps({"topic": "line"}))  # whose? anyone's
    assert answers.get("dave") is None


def test_a_lost_listener_distrusts_and_drops_every_answer() -> None:
    clock = Clock()
    answers = LinesAnswers(max_entries=10, clock=clock)

    def trust(listening: bool) -> None:
        answers.trusted = listening

    announcements = Announcements(
        on_catalogue_changed=lambda: None, on_customer_changed=answers.changed, on_listening=trust
    )
    announcements.listening = True
    answers.keep("alice", b"A", seconds=30, since=answers.changes)
    announcements._lost()
    assert answers.trusted is False
    answers.trusted = True
    assert answers.get("alice") is None
