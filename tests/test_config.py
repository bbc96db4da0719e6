"""Settings: declarations, the five layers, refusals from the vault file, errors, docs."""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path

import pytest

from vault_bmad.config import (
    SPECS,
    SPECS_BY_NAME,
    VAULT_FILE_NAME,
    Settings,
    SettingSpec,
    load_settings,
    user_config_path,
)
from vault_bmad.config.convert import coerce
from vault_bmad.config.reference import settings_markdown
from vault_bmad.errors import ConfigError
from vault_bmad.prices import Prices

DOCS = Path(__file__).resolve().parent.parent / "docs" / "settings.md"
UNSAFE = sorted(spec.name for spec in SPECS if spec.about.unsafe)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A HOME with no config file, so the developer's own never leaks into a test."""
    path = tmp_path / "home"
    path.mkdir()
    return path


def user_file(home: Path, text: str) -> Path:
    path = home / ".config" / "vault-bmad" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_defaults_when_nothing_is_set(home: Path, vault: Path) -> None:
    settings = load_settings(vault, env={"HOME": str(home)})
    assert settings == Settings()


def test_declares_what_the_issue_asks_with_its_defaults() -> None:
    expected = {
        "max_concurrent_agents": 10,
        "min_workers": 1,
        "max_workers": 10,
        "strategy": "adaptive",
        "health_threshold": 0.7,
        "health_cooldown_s": 30,
        "scale_up_utilization": 0.84,
        "scale_down_utilization": 0.35,
        "task_timeout_s": 30,
        "retries": 3,
        "backoff_base_s": 0.5,
        "backoff_max_s": 30,
        "aging_step_s": 60,
        "cache_l1_size": 1000,
        "cache_l1_ttl_s": 300,
        "cache_l2_size": 10000,
        "cache_l2_ttl_s": 3600,
        "cache_l3_size": 100000,
        "cache_l3_ttl_s": 86400,
        "prefetch_threshold": 0.7,
        "llm_api_key": "",
        "llm_model": "llama3.1",
        "llm_timeout_s": 60,
        "llm_give_up_s": 60,
        "command_enabled": False,
        "host": "127.0.0.1",
        "port": 8765,
        "report_interval_s": 3600,
        "debounce_ms": 200,
        "state_dir": ".vault-bmad",
        "executor": "thread",
        "output_folder": "Outputs",
    }
    assert {name: SPECS_BY_NAME[name].default for name in expected} == expected
    assert {"llm_base_url", "llm_api_key", "command_enabled", "command_allowlist"} <= set(UNSAFE)
    assert {"host", "token"} <= set(UNSAFE)


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.name)
def test_each_declaration_is_consistent(spec: SettingSpec) -> None:
    assert spec.about.help.strip().endswith(".")
    assert coerce(spec.kind, spec.default, from_text=False) == spec.default
    if isinstance(spec.default, int | float) and spec.about.minimum is not None:
        assert spec.about.minimum <= spec.default <= (spec.about.maximum or spec.default)


def test_each_layer_overrides_the_ones_below(home: Path, vault: Path) -> None:
    (vault / VAULT_FILE_NAME).write_text(
        "min_workers = 2\nmax_workers = 20\ndebounce_ms = 300\nport = 9000\n"
    )
    user_file(home, "max_workers = 30\ndebounce_ms = 400\nport = 9100\n")
    env = {"HOME": str(home), "VAULT_BMAD_DEBOUNCE_MS": "500", "VAULT_BMAD_PORT": "9200"}
    settings = load_settings(vault, env=env, overrides={"port": 9300, "retries": None})

    assert settings.retries == 3  # the default
    assert settings.min_workers == 2  # the vault file
    assert settings.max_workers == 30  # the user's file
    assert settings.debounce_ms == 500  # the environment
    assert settings.port == 9300  # the command line


def test_user_file_comes_from_xdg_config_home_then_home(tmp_path: Path, home: Path) -> None:
    xdg = tmp_path / "xdg"
    (xdg / "vault-bmad").mkdir(parents=True)
    (xdg / "vault-bmad" / "config.toml").write_text("retries = 7\n")
    user_file(home, "retries = 5\n")

    assert load_settings(None, env={"HOME": str(home), "XDG_CONFIG_HOME": str(xdg)}).retries == 7
    assert load_settings(None, env={"HOME": str(home)}).retries == 5
    relative = {"HOME": str(home), "XDG_CONFIG_HOME": "relative/dir"}
    assert user_config_path(relative) == home / ".config" / "vault-bmad" / "config.toml"


def test_explicit_config_file_replaces_the_default_one(tmp_path: Path, home: Path) -> None:
    user_file(home, "retries = 5\n")
    explicit = tmp_path / "other.toml"
    explicit.write_text("retries = 9\n")
    settings = load_settings(None, config_file=explicit, env={"HOME": str(home)})
    assert settings.retries == 9
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(None, config_file=tmp_path / "missing.toml", env={"HOME": str(home)})


@pytest.mark.parametrize("name", UNSAFE)
def test_unsafe_keys_are_refused_from_the_vault_file(name: str, home: Path, vault: Path) -> None:
    spec = SPECS_BY_NAME[name]
    value = spec.default if spec.default != () else ["sh"]
    if isinstance(value, Prices):
        value = {"gpt-4o-mini": [0.15, 0.6]}
    line = f"{name} = {_toml(value)}\n"
    (vault / VAULT_FILE_NAME).write_text(line)
    with pytest.raises(ConfigError) as caught:
        load_settings(vault, env={"HOME": str(home)})
    message = str(caught.value)
    assert f"{name} is not allowed in the vault file {vault / VAULT_FILE_NAME}" in message
    assert spec.env_var in message

    user_file(home, line)  # the same line is fine in the user's own file
    (vault / VAULT_FILE_NAME).unlink()
    loaded = load_settings(vault, env={"HOME": str(home)})
    expected = coerce(spec.kind, value, from_text=False)
    assert getattr(loaded, name) == expected


def test_prices_from_toml_and_env_give_costs(home: Path) -> None:
    user_file(home, '[llm_prices]\n"gpt-4o-mini" = [0.15, 0.6]\n"qwen2.5:7b" = [0, 0]\n')
    prices = load_settings(None, env={"HOME": str(home)}).llm_prices
    assert prices.cost("gpt-4o-mini", 1_000_000, 2_000_000) == pytest.approx(1.35)
    assert prices.cost("qwen2.5:7b", 500, 500) == 0
    assert prices.cost("unknown", 1, 1) is None
    env = {"HOME": str(home), "VAULT_BMAD_LLM_PRICES": "Qwen/Qwen2.5-7B=0.1/0.2, a=1/2"}
    from_env = load_settings(None, env=env).llm_prices
    assert from_env.by_model == (("Qwen/Qwen2.5-7B", 0.1, 0.2), ("a", 1.0, 2.0))
    user_file(home, '[llm_prices]\n"m" = [0.1]\n')
    with pytest.raises(ConfigError, match=r"llm_prices must be a table of model = \[prompt"):
        load_settings(None, env={"HOME": str(home)})
    bad = {"HOME": str(home), "VAULT_BMAD_LLM_PRICES": "m=-1/2"}
    user_file(home, "")
    with pytest.raises(ConfigError, match="'m' has"):
        load_settings(None, env=bad)


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f'"{k}" = {_toml(v)}' for k, v in value.items()) + "}"
    return repr(value)


def test_unsafe_values_come_from_env_and_config(home: Path, vault: Path) -> None:
    user_file(home, 'command_enabled = true\ncommand_allowlist = ["pandoc", "jq"]\n')
    env = {
        "HOME": str(home),
        "VAULT_BMAD_LLM_BASE_URL": "http://127.0.0.1:8000/v1",
        "VAULT_BMAD_LLM_API_KEY": "sk-from-env",
    }
    settings = load_settings(vault, env=env)
    assert settings.command_enabled is True
    assert settings.command_allowlist == ("pandoc", "jq")
    assert settings.llm_base_url == "http://127.0.0.1:8000/v1"
    assert settings.llm_api_key == "sk-from-env"
    assert "sk-from-env" not in repr(settings)


@pytest.mark.parametrize(
    ("var", "raw", "expected"),
    [
        ("VAULT_BMAD_PORT", "abc", "must be a whole number, not 'abc'"),
        ("VAULT_BMAD_STRATEGY", "fastest", "must be one of round_robin, weighted_round_robin"),
        ("VAULT_BMAD_COMMAND_ENABLED", "maybe", "must be true or false, not 'maybe'"),
        ("VAULT_BMAD_HEALTH_THRESHOLD", "nan", "must be a finite number"),
        ("VAULT_BMAD_PORT", "70000", "must be between 0 and 65535, not 70000"),
        ("VAULT_BMAD_MAX_WORKERS", "0", "must be between 1 and 1000, not 0"),
        ("VAULT_BMAD_RETRIES", "--3", "must be a whole number"),
    ],
)
def test_env_conversion_errors_name_the_variable(
    var: str, raw: str, expected: str, home: Path
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(None, env={"HOME": str(home), var: raw})
    assert f"environment variable {var}:" in str(caught.value)
    assert expected in str(caught.value)


def test_env_values_are_converted(home: Path) -> None:
    env = {
        "HOME": str(home),
        "VAULT_BMAD_COMMAND_ENABLED": "Yes",
        "VAULT_BMAD_COMMAND_ALLOWLIST": "pandoc, jq ,,",
        "VAULT_BMAD_BACKOFF_MAX_S": "12",
        "VAULT_BMAD_STRATEGY": " least_connections ",
        "VAULT_BMAD_CACHE_L1_SIZE": "+250",
    }
    settings = load_settings(None, env=env)
    assert settings.command_enabled is True
    assert settings.command_allowlist == ("pandoc", "jq")
    assert settings.backoff_max_s == 12.0 and isinstance(settings.backoff_max_s, float)
    assert settings.strategy == "least_connections"
    assert settings.cache_l1_size == 250


def test_toml_values_are_type_checked_not_guessed(home: Path) -> None:
    config = user_file(home, 'port = "8765"\nmax_workers = true\nllm_api_key = 12345\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(None, env={"HOME": str(home)})
    message = str(caught.value)
    assert f"config file {config}: port must be a whole number, not '8765'" in message
    assert "max_workers must be a whole number, not True" in message
    assert "llm_api_key must be a string" in message
    assert "12345" not in message  # a secret's value is never echoed


def test_unknown_keys_suggest_the_closest_setting(home: Path, vault: Path) -> None:
    (vault / VAULT_FILE_NAME).write_text("max_worker = 3\n")
    env = {"HOME": str(home), "VAULT_BMAD_LLM_MODLE": "x"}
    with pytest.raises(ConfigError) as caught:
        load_settings(vault, env=env, overrides={"debounce": 5})
    message = str(caught.value)
    assert "unknown setting max_worker; did you mean max_workers?" in message
    assert "VAULT_BMAD_LLM_MODLE; did you mean VAULT_BMAD_LLM_MODEL?" in message
    assert "command line: unknown setting debounce; did you mean debounce_ms?" in message


def test_overrides_take_typed_values_or_text(home: Path) -> None:
    settings = load_settings(
        None, env={"HOME": str(home)}, overrides={"max_workers": "4", "health_threshold": 1}
    )
    assert (settings.max_workers, settings.health_threshold) == (4, 1.0)
    with pytest.raises(ConfigError, match="command line: retries must be a whole number"):
        load_settings(None, env={"HOME": str(home)}, overrides={"retries": 2.5})


def test_settings_that_contradict_each_other_name_both_sources(home: Path) -> None:
    config = user_file(home, "min_workers = 8\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(None, env={"HOME": str(home), "VAULT_BMAD_MAX_WORKERS": "4"})
    assert str(caught.value) == (
        f"min_workers (8, from config file {config}) may not exceed "
        "max_workers (4, from environment variable VAULT_BMAD_MAX_WORKERS)"
    )


def test_broken_toml_names_the_file(home: Path, vault: Path) -> None:
    (vault / VAULT_FILE_NAME).write_text("max_workers = = 3\n")
    with pytest.raises(ConfigError, match=f"{VAULT_FILE_NAME} is not valid TOML"):
        load_settings(vault, env={"HOME": str(home)})


def test_loaded_settings_pickle(home: Path) -> None:
    settings = load_settings(None, env={"HOME": str(home), "VAULT_BMAD_PORT": "9999"})
    copy = pickle.loads(pickle.dumps(settings))
    assert copy == settings and copy.port == 9999


def test_settings_are_frozen_and_hide_secrets() -> None:
    settings = Settings(llm_api_key="sk-secret", token="tok-secret")
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.port = 1  # type: ignore[misc]
    assert "sk-secret" not in repr(settings) and "tok-secret" not in repr(settings)
    assert hash(settings) == hash(Settings(llm_api_key="sk-secret", token="tok-secret"))


def test_docs_match_the_declarations() -> None:
    assert DOCS.read_text() == settings_markdown(), (
        "docs/settings.md is stale: run `python -m vault_bmad.config > docs/settings.md`"
    )
    for spec in SPECS:
        assert f"| `{spec.name}` |" in DOCS.read_text()
