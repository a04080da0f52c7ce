"""aiobotocore clients pointed at AWS, or at a local AWS-compatible endpoint in development."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session

from mvno.common.settings import ServiceSettings

# The local stand-ins (moto, LocalStack) accept any credentials; these are not secrets.
LOCAL_ENDPOINT_CREDENTIALS = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}


def client_options(settings: ServiceSettings) -> dict[str, Any]:
    """Keyword arguments for ``session.create_client`` from the settings."""
    options: dict[str, Any] = {
        "region_name": settings.aws_region,
        "config": AioConfig(
            connect_timeout=2, read_timeout=25, retries={"max_attempts": 3, "mode": "standard"}
        ),
    }
    if settings.aws_endpoint_url:
        options["endpoint_url"] = settings.aws_endpoint_url
        options.update(LOCAL_ENDPOINT_CREDENTIALS)
    if settings.aws_access_key_id and settings.aws_secret_access_key:
        options["aws_access_key_id"] = settings.aws_access_key_id.get_secret_value()
        options["aws_secret_access_key"] = settings.aws_secret_access_key.get_secret_value()
    return options


def aws_client(settings: ServiceSettings, service: str) -> AbstractAsyncContextManager[Any]:
    """An aiobotocore client for ``service`` ("sqs", "sns", "s3", "kms"), used with ``async with``."""
    client: AbstractAsyncContextManager[Any] = get_session().create_client(
        service, **client_options(settings)
    )
    return client
