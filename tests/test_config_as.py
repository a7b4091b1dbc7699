"""`ServiceBase.config_as`: a service's config as a typed, validated msgspec Struct."""

from __future__ import annotations

import msgspec
import pytest

from services.characterize import service as characterize
from services.characterize.entropy import Thresholds
from services.iocs import indicators
from services.iocs import service as iocs
from services.pe import report, traits
from services.sdk.loader import load_service
from services.sdk.manifest import ManifestError

# Every config model of a built-in service, with the service whose manifest documents its keys.
MODELS = [
    ("pe", report.Caps), ("pe", traits.Policy),
    ("characterize", Thresholds), ("characterize", characterize.Limits),
    ("iocs", indicators.Policy), ("iocs", iocs.Limits),
]


@pytest.mark.parametrize(("name", "model"), MODELS, ids=[f"{n}.{m.__name__}" for n, m in MODELS])
def test_model_fields_are_manifest_keys_with_its_defaults(name, model):
    """A field the manifest does not list would never get a deployment's value; a default that
    differs from the manifest would be a second, silently different, documented default."""
    config = load_service(name).manifest.config
    for field in msgspec.structs.fields(model):
        assert field.name in config, f"{model.__name__}.{field.name} is not a key of {name}'s config"
        if field.default is not msgspec.NODEFAULT:
            assert msgspec.convert(config[field.name], field.type, strict=False) == field.default, field.name


def test_converts_the_manifest_config():
    service = load_service("pe")
    assert service.config_as(report.Caps) == report.Caps()
    policy = service.config_as(traits.Policy)
    assert policy.packer_sections["UPX0"] == "UPX"
    assert (policy.section_entropy, policy.large_overlay_min_ratio) == (7.2, 0.5)


def test_a_deployment_override_reaches_the_model():
    service = load_service("pe", config_overrides={"max_sections": 3, "section_entropy": 7})
    assert service.caps.max_sections == 3 and service.config_as(report.Caps).max_sections == 3
    assert service.policy.section_entropy == 7.0 and isinstance(service.policy.section_entropy, float)
    assert service.caps.max_exports == 100  # the keys not overridden keep the manifest's values


def test_a_bad_value_fails_at_start_naming_the_service_and_key():
    with pytest.raises(ManifestError, match=r"^service pe: config for Caps: .*\$\.max_sections"):
        load_service("pe", config_overrides={"max_sections": "many"})
    with pytest.raises(ManifestError, match=r"^service characterize: .*\$\.high_entropy_bits"):
        load_service("characterize", config_overrides={"high_entropy_bits": [7.5]})
    with pytest.raises(ManifestError, match=r"^service characterize: .*entropy_max_blocks"):
        load_service("characterize", config_overrides={"entropy_max_blocks": 0})  # would divide by zero


def test_unknown_keys_are_ignored_unless_the_model_forbids_them():
    service = load_service("pe")
    service.config["not_a_pe_key"] = 1  # a key some other part of the service reads by hand
    assert service.config_as(report.Caps) == report.Caps()

    class OnlyCaps(msgspec.Struct, forbid_unknown_fields=True):
        max_sections: int = 96

    with pytest.raises(ManifestError, match=r"^service pe: config for OnlyCaps: Object contains unknown field"):
        service.config_as(OnlyCaps)


def test_defaults_fill_missing_keys():
    class Extra(msgspec.Struct):
        max_sections: int = 0
        not_in_the_manifest: float = 2.5

    assert load_service("pe").config_as(Extra) == Extra(max_sections=96, not_in_the_manifest=2.5)


def test_every_call_reads_the_config_afresh():
    service = load_service("pe")
    service.config["max_exports"] = 7
    assert service.config_as(report.Caps).max_exports == 7


def test_a_misspelled_override_key_is_refused_at_load():
    with pytest.raises(ManifestError, match=r"config override 'max_sectoins' is not a key .*max_sections"):
        load_service("pe", config_overrides={"max_sectoins": 10})
