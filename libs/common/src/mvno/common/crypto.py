"""Envelope encryption of personal data, field by field, under a KMS key.

A data key from KMS (``GenerateDataKey``, AES-256) encrypts each field with AES-GCM; what is
stored is the field's nonce and ciphertext, plus the data key as KMS encrypted it. Only a caller
allowed to ``kms:Decrypt`` with that key can read the field back, and a database dump, a log or a
backup holds nothing readable.

Each ciphertext is bound to where it belongs (``context``: table, record id and field name, as
AES-GCM associated data), so a value copied into another row or field does not decrypt.

A data key is reused for a bounded time and number of records (as the AWS Encryption SDK's caching
materials manager does), so an order does not cost a KMS round trip; decrypted data keys are kept
briefly for the same reason.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from typing import Any

from cachetools import TTLCache
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12
FORMAT_VERSION = b"\x01"


class DecryptionError(Exception):
    """A field could not be decrypted (wrong context, tampered, or the key is not usable)."""


@dataclass
class _DataKey:
    plaintext: bytes
    encrypted: bytes
    created: float
    uses: int = 0
    cipher: AESGCM | None = None


@dataclass(frozen=True)
class Sealed:
    """Encrypted fields of one record and the encrypted data key that opens them."""

    encrypted_data_key: bytes
    fields: dict[str, bytes]


class FieldCipher:
    """Encrypts and decrypts fields with data keys from one KMS key (an id, ARN or alias)."""

    def __init__(
        self,
        kms: Any,
        key_id: str,
        *,
        max_key_age_seconds: float = 300,
        max_key_uses: int = 10_000,
    ) -> None:
        self._kms = kms
        self._key_id = key_id
        self._max_age = max_key_age_seconds
        self._max_uses = max_key_uses
        self._current: _DataKey | None = None
        self._lock = asyncio.Lock()
        self._opened: TTLCache[bytes, bytes] = TTLCache(maxsize=1024, ttl=max_key_age_seconds)

    async def seal(self, context: str, fields: dict[str, str]) -> Sealed:
        """Encrypt ``fields`` (name → clear text) of the record ``context`` names."""
        key = await self._data_key()
        if key.cipher is None:
            key.cipher = AESGCM(key.plaintext)
        cipher = key.cipher
        # Every field's own random nonce, all drawn in one call (one system call a record).
        nonces = os.urandom(NONCE_BYTES * len(fields))
        sealed = {}
        for index, (name, value) in enumerate(fields.items()):
            nonce = nonces[index * NONCE_BYTES : (index + 1) * NONCE_BYTES]
            associated = f"{context}:{name}".encode()
            sealed[name] = (
                FORMAT_VERSION + nonce + cipher.encrypt(nonce, value.encode(), associated)
            )
        return Sealed(key.encrypted, sealed)

    async def open(self, context: str, sealed: Sealed) -> dict[str, str]:
        """Decrypt every field of ``sealed``; raises :class:`DecryptionError` on any mismatch."""
        key = await self._plaintext_key(sealed.encrypted_data_key)
        cipher = AESGCM(key)
        opened = {}
        for name, blob in sealed.fields.items():
            if blob[:1] != FORMAT_VERSION or len(blob) <= 1 + NONCE_BYTES:
                raise DecryptionError(f"field {name} is not in a known format")
            nonce, ciphertext = blob[1 : 1 + NONCE_BYTES], blob[1 + NONCE_BYTES :]
            try:
                clear = cipher.decrypt(nonce, ciphertext, f"{context}:{name}".encode())
            except Exception as error:  # InvalidTag: tampered, or moved to another record
                raise DecryptionError(f"field {name} does not decrypt in {context}") from error
            opened[name] = clear.decode()
        return opened

    async def _data_key(self) -> _DataKey:
        key = self._current
        if key is not None and self._usable(key):
            key.uses += 1  # no await since the check: no other task can take the last use
            return key
        async with self._lock:
            key = self._current
            if key is None or not self._usable(key):
                answer = await self._kms.generate_data_key(KeyId=self._key_id, KeySpec="AES_256")
                key = _DataKey(answer["Plaintext"], answer["CiphertextBlob"], time.monotonic())
                self._current = key
                self._opened[key.encrypted] = key.plaintext
            key.uses += 1
            return key

    def _usable(self, key: _DataKey) -> bool:
        return key.uses < self._max_uses and time.monotonic() - key.created <= self._max_age

    async def _plaintext_key(self, encrypted: bytes) -> bytes:
        if (cached := self._opened.get(encrypted)) is not None:
            return cached
        try:
            answer = await self._kms.decrypt(CiphertextBlob=encrypted, KeyId=self._key_id)
        except Exception as error:
            raise DecryptionError("the data key cannot be decrypted with this KMS key") from error
        plaintext: bytes = answer["Plaintext"]
        self._opened[encrypted] = plaintext
        return plaintext


async def ensure_kms_alias(kms: Any, alias: str, description: str) -> str:
    """DEVELOPMENT and tests: the key behind ``alias``, created (symmetric) when missing.

    In AWS the key and its alias come from Terraform with a key policy; services never create keys.
    """
    if not alias.startswith("alias/"):
        raise ValueError("a KMS alias starts with 'alias/'")
    try:
        found = await kms.describe_key(KeyId=alias)
        key_id: str = found["KeyMetadata"]["KeyId"]
        return key_id
    except kms.exceptions.NotFoundException:
        pass
    created = await kms.create_key(Description=description, KeyUsage="ENCRYPT_DECRYPT")
    key_id = created["KeyMetadata"]["KeyId"]
    try:
        await kms.create_alias(AliasName=alias, TargetKeyId=key_id)
    except kms.exceptions.AlreadyExistsException:
        found = await kms.describe_key(KeyId=alias)  # another process made it first
        key_id = found["KeyMetadata"]["KeyId"]
    return key_id
