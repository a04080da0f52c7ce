"""Field encryption under a KMS key on the local AWS-compatible endpoint (real KMS wire protocol)."""

from __future__ import annotations

import asyncio

import pytest

from mvno.common.aws import aws_client
from mvno.common.crypto import DecryptionError, FieldCipher, Sealed, ensure_kms_alias
from mvno.common.settings import ServiceSettings

ALIAS = "alias/mvno-test-pii"
PERSONAL = {"id_number": "8001015009087", "address": "12 Loop Street, Cape Town, 8001"}


@pytest.fixture
async def kms(clean_aws):
    settings = ServiceSettings(environment="test", aws_endpoint_url=clean_aws)
    async with aws_client(settings, "kms") as client:
        await ensure_kms_alias(client, ALIAS, "test personal data")
        yield client


async def test_fields_round_trip_and_hold_nothing_readable(kms):
    cipher = FieldCipher(kms, ALIAS)
    sealed = await cipher.seal("orders:o-1", PERSONAL)
    for name, blob in sealed.fields.items():
        assert PERSONAL[name].encode() not in blob
        assert PERSONAL[name][:6].encode() not in blob
    assert await FieldCipher(kms, ALIAS).open("orders:o-1", sealed) == PERSONAL


async def test_a_value_moved_to_another_record_or_field_does_not_decrypt(kms):
    cipher = FieldCipher(kms, ALIAS)
    sealed = await cipher.seal("orders:o-1", PERSONAL)
    with pytest.raises(DecryptionError):
        await cipher.open("orders:o-2", sealed)
    swapped = Sealed(
        sealed.encrypted_data_key,
        {"id_number": sealed.fields["address"], "address": sealed.fields["id_number"]},
    )
    with pytest.raises(DecryptionError):
        await cipher.open("orders:o-1", swapped)
    tampered = bytearray(sealed.fields["id_number"])
    tampered[-1] ^= 1
    with pytest.raises(DecryptionError):
        await cipher.open(
            "orders:o-1", Sealed(sealed.encrypted_data_key, {"id_number": bytes(tampered)})
        )


async def test_a_data_key_is_reused_within_its_limits(kms):
    cipher = FieldCipher(kms, ALIAS, max_key_uses=3)
    keys = [(await cipher.seal(f"orders:o-{i}", PERSONAL)).encrypted_data_key for i in range(4)]
    assert keys[0] == keys[1] == keys[2]
    assert keys[3] != keys[0]


async def test_another_kms_key_cannot_open_the_data_key(kms):
    sealed = await FieldCipher(kms, ALIAS).seal("orders:o-1", PERSONAL)
    await ensure_kms_alias(kms, "alias/other", "another key")
    with pytest.raises(DecryptionError):
        await FieldCipher(kms, "alias/other").open("orders:o-1", sealed)


async def test_every_field_of_every_record_has_its_own_nonce(kms):
    cipher = FieldCipher(kms, ALIAS)
    records = [await cipher.seal(f"orders:o-{i}", PERSONAL) for i in range(50)]
    nonces = [blob[1:13] for sealed in records for blob in sealed.fields.values()]
    assert len(set(nonces)) == len(nonces) == 100
    opened = [await cipher.open(f"orders:o-{i}", sealed) for i, sealed in enumerate(records)]
    assert opened == [PERSONAL] * 50


async def test_a_data_key_past_its_age_is_replaced(kms):
    cipher = FieldCipher(kms, ALIAS, max_key_age_seconds=0.05)
    first = (await cipher.seal("orders:o-1", PERSONAL)).encrypted_data_key
    assert (await cipher.seal("orders:o-2", PERSONAL)).encrypted_data_key == first
    await asyncio.sleep(0.1)
    assert (await cipher.seal("orders:o-3", PERSONAL)).encrypted_data_key != first
