"""Settings: each declared once with its default and help (`settings.py`), a raw value
checked and converted (`convert.py`), then layered from five sources (`loading.py`).

Precedence, lowest first: defaults, `vault-bmad.toml` at the vault's root (harmless
settings only), the user's config file, `VAULT_BMAD_*` environment variables, and
command-line flags. `python -m vault_bmad.config` prints docs/settings.md (`reference.py`).
"""

from vault_bmad.config.loading import load_settings, user_config_path
from vault_bmad.config.settings import (
    DASK_SCHEME,
    ENV_PREFIX,
    MAX_OUTPUT_BYTES,
    SPECS,
    SPECS_BY_NAME,
    STATE_DB,
    STRATEGIES,
    VAULT_FILE_NAME,
    About,
    Settings,
    SettingSpec,
    Strategy,
    check_executor_spec,
)

__all__ = [
    "DASK_SCHEME",
    "ENV_PREFIX",
    "MAX_OUTPUT_BYTES",
    "SPECS",
    "SPECS_BY_NAME",
    "STATE_DB",
    "STRATEGIES",
    "VAULT_FILE_NAME",
    "About",
    "SettingSpec",
    "Settings",
    "Strategy",
    "check_executor_spec",
    "load_settings",
    "user_config_path",
]
