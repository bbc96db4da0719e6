"""`python -m vault_bmad.config` prints docs/settings.md."""

from vault_bmad.config.reference import settings_markdown

print(settings_markdown(), end="")
