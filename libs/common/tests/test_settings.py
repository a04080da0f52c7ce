import pytest
from pydantic import SecretStr, ValidationError

from mvno.common.settings import Environment, InsecureSettingsError, ServiceSettings


class WithSecret(ServiceSettings):
    webhook_secret: SecretStr = SecretStr("changeme")


def production(**overrides):
    values = {"environment": "production", "dev_issuer_enabled": False, "aws_endpoint_url": None}
    values.update(overrides)
    return values


def test_development_accepts_local_values():
    settings = WithSecret(environment="development", aws_endpoint_url="http://127.0.0.1:4566")
    assert settings.environment is Environment.DEVELOPMENT
    assert not settings.is_production


def test_production_with_real_values_is_accepted():
    settings = WithSecret(**production(webhook_secret=SecretStr("k8s-mounted-7f3a9c")))
    assert settings.is_production


@pytest.mark.parametrize(
    ("override", "complaint"),
    [
        ({"dev_issuer_enabled": True}, "MVNO_DEV_ISSUER_ENABLED"),
        ({"aws_endpoint_url": "http://127.0.0.1:4566"}, "MVNO_AWS_ENDPOINT_URL"),
        ({"webhook_secret": SecretStr("changeme")}, "webhook_secret"),
        ({"aws_secret_access_key": SecretStr("test")}, "aws_secret_access_key"),
    ],
)
def test_production_refuses_development_only_values(override, complaint):
    values = production(webhook_secret=SecretStr("k8s-mounted-7f3a9c"))
    values.update(override)
    with pytest.raises(ValidationError) as error:
        WithSecret(**values)
    assert complaint in str(error.value)
    assert isinstance(error.value.errors()[0]["ctx"]["error"], InsecureSettingsError)


def test_environment_is_read_from_prefixed_variables(monkeypatch):
    monkeypatch.setenv("MVNO_ENVIRONMENT", "test")
    monkeypatch.setenv("MVNO_DATABASE_POOL_SIZE", "3")
    settings = ServiceSettings()
    assert settings.environment is Environment.TEST
    assert settings.database_pool_size == 3


def test_unknown_environment_is_refused(monkeypatch):
    monkeypatch.setenv("MVNO_ENVIRONMENT", "staging-ish")
    with pytest.raises(ValidationError):
        ServiceSettings()
