"""Event contracts: committed schemas in step, no breaking change, and the compatibility rules."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from mvno.common.events import CONTRACTS, EventData, contract_for, producer_of
from mvno.common.events import schemas as schema_files
from mvno.common.events.base import (
    PERSONAL_DATA_MARKERS,
    parse_event_type,
    personal_data_markers_in,
)
from mvno.common.events.billing import AccountCreated
from mvno.common.events.catalog import OfferingRetired
from mvno.common.events.compatibility import breaking_changes
from mvno.common.events.orders import OrderStateChanged, SubscriptionActivated
from mvno.common.events.registry import build_registry

FIX = f"run `{schema_files.COMMAND} --write` and commit the files"

# --- the committed schemas are the baseline -----------------------------------------------------


def test_every_contract_has_its_committed_schema_unchanged() -> None:
    generated = schema_files.generate_schemas()
    committed_files = {p.name for p in schema_files.SCHEMA_DIR.glob("*.json")}
    missing = sorted(f"{t}.json" for t in generated if f"{t}.json" not in committed_files)
    assert not missing, f"no committed schema for {missing}: {FIX}"
    stale = [
        event_type
        for event_type, schema in generated.items()
        if schema_files.schema_path(event_type).read_text(encoding="utf-8")
        != schema_files.render(schema)
    ]
    assert not stale, f"the models changed the schemas of {stale}: {FIX}"


def test_no_model_breaks_its_committed_schema() -> None:
    # The committed files are what consumers were promised; --write refuses to overwrite them with a
    # breaking change, so this fails until the change is made additive or becomes a new .v<N>.
    problems = schema_files.breaking_against(
        schema_files.read_schemas(), schema_files.generate_schemas()
    )
    assert not problems, "breaking changes to event contracts:\n" + "\n".join(problems)


def test_check_command_passes_on_the_committed_schemas(capsys: pytest.CaptureFixture[str]) -> None:
    assert schema_files.main(["--check"]) == 0
    assert "up to date" in capsys.readouterr().out


def test_schema_ids_and_file_names_follow_the_type() -> None:
    for event_type, schema in schema_files.read_schemas().items():
        assert schema["$id"] == f"urn:mvno:event:{event_type}"
        assert parse_event_type(event_type).version >= 1


# --- the --write / --check workflow, on a copy of the schemas ------------------------------------


@pytest.fixture
def schema_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "schemas"
    written, refusals = schema_files.write(directory)
    assert refusals == []
    assert len(written) == len(CONTRACTS)
    return directory


def _with_change(event_type: str, change: Any) -> dict[str, dict[str, Any]]:
    generated = copy.deepcopy(schema_files.generate_schemas())
    change(generated[event_type])
    return generated


def test_write_refuses_a_breaking_change_and_writes_nothing(schema_dir: Path) -> None:
    event_type = "orders.subscription.activated.v1"
    path = schema_files.schema_path(event_type, schema_dir)
    before = path.read_text(encoding="utf-8")

    def drop_msisdn(schema: dict[str, Any]) -> None:
        del schema["properties"]["msisdn"]
        schema["required"].remove("msisdn")

    generated = _with_change(event_type, drop_msisdn)
    written, refusals = schema_files.write(schema_dir, generated)

    assert written == []
    assert refusals == [f"{event_type}: property 'msisdn': property removed"]
    assert path.read_text(encoding="utf-8") == before
    assert any("msisdn" in problem for problem in schema_files.check(schema_dir, generated))


def test_write_accepts_an_additive_change_and_a_new_version(schema_dir: Path) -> None:
    event_type = "orders.subscription.activated.v1"

    def add_optional(schema: dict[str, Any]) -> None:
        schema["properties"]["iccid"] = {"anyOf": [{"type": "string"}, {"type": "null"}]}

    generated = _with_change(event_type, add_optional)
    # A breaking v2 next to the unchanged v1 is a new file, not an overwrite.
    v2 = copy.deepcopy(generated[event_type])
    del v2["properties"]["msisdn"]
    generated["orders.subscription.activated.v2"] = v2

    written, refusals = schema_files.write(schema_dir, generated)

    assert refusals == []
    assert written == [event_type, "orders.subscription.activated.v2"]
    assert schema_files.check(schema_dir, generated) == []


def test_write_never_deletes_the_schema_of_a_removed_contract(schema_dir: Path) -> None:
    generated = schema_files.generate_schemas()
    del generated["catalog.offering.retired.v1"]

    written, refusals = schema_files.write(schema_dir, generated)

    assert written == []
    assert refusals == [
        "catalog.offering.retired.v1: has a committed schema but no contract any more"
    ]
    assert schema_files.schema_path("catalog.offering.retired.v1", schema_dir).exists()


def test_check_reports_missing_and_stale_files(schema_dir: Path) -> None:
    schema_files.schema_path("billing.usage.recorded.v1", schema_dir).unlink()
    schema_files.schema_path("billing.bundle.expired.v1", schema_dir).write_text("{}\n")

    problems = schema_files.check(schema_dir)

    assert "billing.usage.recorded.v1: no committed schema (new event type?)" in problems
    assert "billing.bundle.expired.v1: committed schema differs from the model" in problems


def test_check_with_a_baseline_catches_a_hand_edited_schema(
    schema_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Someone "fixed" the committed file by hand to match a breaking model change; the main
    # branch's copy (the baseline) still has the promise.
    edited = tmp_path / "edited"
    edited.mkdir()
    for path in schema_dir.glob("*.json"):
        (edited / path.name).write_text(path.read_text())
    baseline = json.loads((edited / "billing.account.created.v1.json").read_text())
    baseline["properties"]["billing_account_id"]["type"] = "integer"  # the old promise, differing
    (schema_dir / "billing.account.created.v1.json").write_text(schema_files.render(baseline))

    code = schema_files.main(["--check", "--dir", str(edited), "--baseline", str(schema_dir)])

    assert code == 1
    err = capsys.readouterr().err
    assert "billing.account.created.v1: property 'billing_account_id': type changed" in err


def test_write_command_exit_code(schema_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert schema_files.main(["--write", "--dir", str(schema_dir)]) == 0
    assert "up to date" in capsys.readouterr().out
    (schema_dir / "orders.zombie.happened.v1.json").write_text('{"type": "object"}\n')
    assert schema_files.main(["--write", "--dir", str(schema_dir)]) == 1
    assert "orders.zombie.happened.v1: has a committed schema but no contract" in (
        capsys.readouterr().err
    )


# --- breaking_changes on hand-written pairs ------------------------------------------------------


def _event(properties: dict[str, Any], required: list[str], **defs: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties, "required": required}
    if defs:
        schema["$defs"] = defs
    return schema


STR: dict[str, Any] = {"type": "string"}
NULLABLE_STR: dict[str, Any] = {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None}
DECIMAL: dict[str, Any] = {"type": "string", "format": "decimal"}
MONEY: dict[str, Any] = {
    "type": "object",
    "title": "Money",
    "properties": {"amount": DECIMAL, "currency": {"const": "ZAR", "type": "string"}},
    "required": ["amount"],
}
STATE: dict[str, Any] = {"enum": ["acknowledged", "completed", "failed"], "type": "string"}


def test_removing_a_field_is_breaking() -> None:
    old = _event({"id": STR, "note": NULLABLE_STR}, ["id"])
    new = _event({"id": STR}, ["id"])
    assert breaking_changes(old, new) == ["property 'note': property removed"]


@pytest.mark.parametrize(
    ("old_type", "new_type"),
    [
        pytest.param(STR, {"type": "integer"}, id="str-to-int"),
        pytest.param(DECIMAL, {"type": "number"}, id="decimal-string-to-number"),
        pytest.param(
            {"type": "string", "format": "date-time"},
            {"type": "string", "format": "date"},
            id="date-time-to-date",
        ),
        pytest.param(DECIMAL, STR, id="decimal-to-free-text"),
        pytest.param(STR, NULLABLE_STR, id="now-nullable"),
        pytest.param(NULLABLE_STR, STR, id="no-longer-nullable"),
        pytest.param({"type": "array", "items": STR}, STR, id="list-to-scalar"),
    ],
)
def test_retyping_a_field_is_breaking(old_type: dict[str, Any], new_type: dict[str, Any]) -> None:
    problems = breaking_changes(_event({"x": old_type}, []), _event({"x": new_type}, []))
    assert len(problems) == 1
    assert problems[0].startswith("property 'x': type changed from ")


def test_retyping_inside_a_referenced_model_is_breaking() -> None:
    old = _event({"price": {"$ref": "#/$defs/Money"}}, ["price"], Money=MONEY)
    new_money = copy.deepcopy(MONEY)
    new_money["properties"]["amount"] = {"type": "number"}
    new = _event({"price": {"$ref": "#/$defs/Money"}}, ["price"], Money=new_money)
    assert breaking_changes(old, new) == [
        "property 'price.amount': type changed from string (decimal) to number"
    ]


def test_a_ref_replaced_by_the_same_inline_model_is_not_breaking() -> None:
    renamed = copy.deepcopy(MONEY) | {"title": "Amount"}  # a renamed class is the same wire shape
    old = _event({"price": {"$ref": "#/$defs/Money"}}, ["price"], Money=MONEY)
    new = _event({"price": renamed}, ["price"])
    assert breaking_changes(old, new) == []


def test_retyping_array_items_is_breaking() -> None:
    old = _event({"tags": {"type": "array", "items": STR}}, [])
    new = _event({"tags": {"type": "array", "items": {"type": "integer"}}}, [])
    assert breaking_changes(old, new) == ["property 'tags[]': type changed from string to integer"]


def test_making_an_optional_field_required_is_breaking() -> None:
    old = _event({"id": STR, "note": STR}, ["id"])
    new = _event({"id": STR, "note": STR}, ["id", "note"])
    assert breaking_changes(old, new) == [
        "property 'note': newly required (events published before may lack it)"
    ]


def test_adding_a_required_field_is_breaking() -> None:
    problems = breaking_changes(_event({}, []), _event({"id": STR}, ["id"]))
    assert problems == [
        "property 'id': added as required (events published before lack it; make it optional)"
    ]


def test_making_a_required_field_optional_is_breaking() -> None:
    problems = breaking_changes(_event({"id": STR}, ["id"]), _event({"id": STR}, []))
    assert problems == [
        "property 'id': no longer required (consumers may rely on it being present)"
    ]


def test_removing_an_enum_value_is_breaking() -> None:
    narrower = {"enum": ["acknowledged", "completed"], "type": "string"}
    problems = breaking_changes(_event({"state": STATE}, []), _event({"state": narrower}, []))
    assert problems == ["property 'state': enum value(s) removed: \"failed\""]


def test_removing_a_value_from_an_optional_enum_is_breaking() -> None:
    old = _event({"state": {"anyOf": [STATE, {"type": "null"}]}}, [])
    new = _event(
        {"state": {"anyOf": [{"const": "completed", "type": "string"}, {"type": "null"}]}}, []
    )
    assert breaking_changes(old, new) == [
        'property \'state\': enum value(s) removed: "acknowledged", "failed"'
    ]


def test_restricting_free_text_to_an_enum_is_breaking() -> None:
    problems = breaking_changes(_event({"state": STR}, []), _event({"state": STATE}, []))
    assert problems == [
        'property \'state\': now restricted to "acknowledged", "completed", "failed"'
    ]


def test_changing_a_constraint_is_breaking() -> None:
    old = _event({"id": STR}, [])
    new = _event({"id": {"type": "string", "minLength": 1}}, [])
    assert breaking_changes(old, new) == [
        "property 'id': constraint minLength changed from none to 1"
    ]


def test_adding_an_optional_field_is_not_breaking() -> None:
    old = _event({"id": STR}, ["id"])
    new = _event({"id": STR, "note": NULLABLE_STR}, ["id"])
    assert breaking_changes(old, new) == []


def test_adding_an_enum_value_is_not_breaking() -> None:
    wider = {"enum": ["acknowledged", "completed", "failed", "held"], "type": "string"}
    assert breaking_changes(_event({"state": STATE}, []), _event({"state": wider}, [])) == []


def test_a_const_growing_into_an_enum_is_not_breaking() -> None:
    old = _event({"currency": {"const": "ZAR", "type": "string"}}, [])
    new = _event({"currency": {"enum": ["ZAR", "USD"], "type": "string"}}, [])
    assert breaking_changes(old, new) == []


def test_annotation_changes_are_not_breaking() -> None:
    old = _event({"id": STR | {"title": "Id"}}, ["id"])
    new = _event({"id": STR | {"title": "Identifier", "description": "The id."}}, ["id"])
    assert breaking_changes(old, new) == []


def test_a_recursive_model_is_compared_without_looping() -> None:
    node = {
        "type": "object",
        "properties": {"children": {"type": "array", "items": {"$ref": "#/$defs/Node"}}},
    }
    schema = _event({"root": {"$ref": "#/$defs/Node"}}, [], Node=node)
    assert breaking_changes(schema, copy.deepcopy(schema)) == []


def test_every_contract_is_compatible_with_itself() -> None:
    for schema in schema_files.generate_schemas().values():
        assert breaking_changes(schema, schema) == []


def test_retyping_a_real_contract_field_is_caught() -> None:
    # The end-to-end case: the generated schema of a real model, with a nested retype.
    old = schema_files.schema_of(OrderStateChanged)
    new = copy.deepcopy(old)
    new["$defs"]["OrderItemProgress"]["properties"]["state"]["enum"].remove("pending")
    assert breaking_changes(old, new) == [
        "property 'items[].state': enum value(s) removed: \"pending\""
    ]


# --- the models ----------------------------------------------------------------------------------


def test_unknown_fields_are_ignored_when_parsing() -> None:
    payload = {
        "billing_account_id": "ba-1",
        "subscription_id": "sub-1",
        "customer_id": "cus-1",
        "added_by_a_later_version": {"anything": [1, 2]},
    }
    event = AccountCreated.model_validate(payload)
    assert event.billing_account_id == "ba-1"
    assert "added_by_a_later_version" not in event.model_dump()


def test_payloads_round_trip_through_json_with_exact_money_and_aware_times() -> None:
    event = contract_for("orders.bundle.purchased.v1")
    assert event is not None
    payload = {
        "subscription_id": "sub-1",
        "customer_id": "cus-1",
        "order_id": "ord-1",
        "order_item_id": "1",
        "offering_id": "off-5gb",
        "allowance": {"data_mb": 5120, "validity_days": 30},
        "price": {"amount": "149.00"},
        "valid_from": "2025-01-01T10:00:00+02:00",
        "valid_to": "2025-01-31T10:00:00+02:00",
    }
    parsed = event.model_validate(payload)
    wire = parsed.model_dump(mode="json")
    assert wire["price"] == {"amount": "149.00", "currency": "ZAR"}
    assert event.model_validate_json(json.dumps(wire)) == parsed
    assert parsed.event_subject() == "sub-1"

    with pytest.raises(ValidationError):
        event.model_validate(payload | {"valid_from": "2025-01-01T10:00:00"})  # naive
    with pytest.raises(ValidationError):
        event.model_validate(payload | {"price": {"amount": "149.00", "currency": "USD"}})


def test_payloads_are_frozen() -> None:
    event = OfferingRetired(offering_id="off-1", version="1")
    with pytest.raises(ValidationError):
        event.offering_id = "off-2"  # type: ignore[misc]


def test_subject_comes_from_the_subject_field() -> None:
    event = SubscriptionActivated(
        subscription_id="sub-9",
        customer_id="cus-1",
        sequence=1,
        order_id="ord-1",
        msisdn="+27821234567",
        offering_id="off-1",
        payment_type="prepaid",
        sim_kind="eSIM",
    )
    assert event.event_subject() == "sub-9"
    assert event.event_type == "orders.subscription.activated.v1"


@pytest.mark.parametrize(
    "bad",
    [
        "orders.order.completed",  # no version
        "orders.order.completed.v0",  # versions start at 1
        "orders.order.completed.v01",
        "Orders.order.completed.v1",
        "orders.order.completed.V1",
        "orders.order-completed.v1",
        "orders.completed.v1",
        "orders.order.state.changed.v1",
        "orders..completed.v1",
        "orders.order.completed.v1 ",
    ],
)
def test_bad_type_names_are_refused_at_class_creation(bad: str) -> None:
    with pytest.raises(ValueError, match="is not an event type name"):
        type("Bad", (EventData,), {"__annotations__": {}, "event_type": bad})


def test_good_type_names_parse() -> None:
    parts = parse_event_type("billing-sync.usage_batch.ingested_late.v12")
    assert parts == ("billing-sync", "usage_batch", "ingested_late", 12)
    assert producer_of("orders.order.state_changed.v1") == "orders"
    with pytest.raises(ValueError, match="is not an event type name"):
        producer_of("not a type")


def test_subject_field_must_name_a_field() -> None:
    with pytest.raises(TypeError, match="not a field"):
        type(
            "Bad",
            (EventData,),
            {"__annotations__": {}, "event_type": "a.b.happened.v1", "subject_field": "nope"},
        )


def test_personal_data_fields_are_refused_at_class_creation() -> None:
    with pytest.raises(TypeError, match="never carry personal data"):
        type(
            "Leaky",
            (EventData,),
            {"__annotations__": {"passport_number": "str"}, "event_type": "a.b.leaked.v1"},
        )


def test_registry_is_explicit_and_consistent() -> None:
    assert contract_for("orders.order.state_changed.v1") is OrderStateChanged
    assert contract_for("orders.order.exploded.v1") is None
    for event_type, contract in CONTRACTS.items():
        assert contract.event_type == event_type
        assert not contract.is_abstract()
    assert {producer_of(t) for t in CONTRACTS} == {"catalog", "orders", "billing", "platform"}


def test_registry_refuses_duplicates_and_foreign_producers() -> None:
    class FakeModule:
        __name__ = "fake"
        PRODUCER = "orders"
        EVENTS: tuple[type[EventData], ...] = (OrderStateChanged, OrderStateChanged)

    with pytest.raises(ValueError, match="used by both"):
        build_registry([FakeModule])  # type: ignore[list-item]
    FakeModule.PRODUCER = "catalog"
    FakeModule.EVENTS = (OrderStateChanged,)
    with pytest.raises(ValueError, match="whose producer is 'catalog'"):
        build_registry([FakeModule])  # type: ignore[list-item]


# --- no personal data in any contract -----------------------------------------------------------


def _property_names(schema: Any) -> Iterator[str]:
    if isinstance(schema, dict):
        for name, value in schema.items():
            if name == "properties" and isinstance(value, dict):
                yield from value
            yield from _property_names(value)
    elif isinstance(schema, list):
        for item in schema:
            yield from _property_names(item)


def test_no_contract_carries_personal_data() -> None:
    schemas = schema_files.read_schemas() | schema_files.generate_schemas()
    leaks = sorted(
        f"{event_type}: {name} ({', '.join(markers)})"
        for event_type, schema in schemas.items()
        for name in set(_property_names(schema))
        if (markers := personal_data_markers_in(name))
    )
    assert leaks == [], "events never carry personal data"


@pytest.mark.parametrize(
    "name",
    ["id_number", "passport_no", "postal_address", "dateOfBirth", "dob", "customerEmail"],
)
def test_personal_data_names_are_recognised(name: str) -> None:
    assert personal_data_markers_in(name), f"{name} should be flagged ({PERSONAL_DATA_MARKERS})"


def test_ordinary_names_are_not_flagged() -> None:
    for name in ("customer_id", "msisdn", "offering_id", "billing_account_id", "name"):
        assert personal_data_markers_in(name) == []


def test_sample_money_is_exact() -> None:
    # Decimal on the wire as a string: 0.1 + 0.2 stays 0.3.
    contract = contract_for("billing.balance.ran_low.v1")
    assert contract is not None
    event = contract.model_validate(
        {
            "subscription_id": "sub-1",
            "customer_id": "cus-1",
            "balance_type": "airtime",
            "remaining": {"amount": Decimal("0.1") + Decimal("0.2"), "units": "ZAR"},
            "threshold": {"amount": "5", "units": "ZAR"},
        }
    )
    assert event.model_dump(mode="json")["remaining"] == {"amount": "0.3", "units": "ZAR"}
