"""Secret values on this machine (local runs, `release` creating Secrets, store credentials): the process environment first, then `.mizzen/secrets/<env>.env`.

Both sources use the names the workload sees (`MIZZEN_SECRET_<NAME>_<KEY>`), so a value set
for one run is found the same way by every later one.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from mizzen.errors import SecretMissingError
from mizzen.plan.model import secret_env_name

SECRETS_DIR = ".mizzen/secrets"


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines; `#` comments, blank lines, `export ` and surrounding quotes allowed."""
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        key = key.strip().removeprefix("export ").strip()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values


class SecretValues:
    def __init__(
        self, root: str | Path, env: str | None, environ: Mapping[str, str] | None = None
    ) -> None:
        self.file = Path(root) / SECRETS_DIR / f"{env or 'local'}.env"
        self.environ = os.environ if environ is None else environ
        self._file_values: dict[str, str] | None = None

    def _from_file(self) -> dict[str, str]:
        if self._file_values is None:
            self._file_values = read_env_file(self.file) if self.file.is_file() else {}
        return self._file_values

    def get(self, secret: str, key: str) -> str | None:
        name = secret_env_name(secret, key)
        value = self.environ.get(name)
        return value if value is not None else self._from_file().get(name)

    def require(self, refs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """Every value, or `SecretMissingError` naming all the missing ones and where to set them."""
        found: dict[tuple[str, str], str] = {}
        missing: list[tuple[str, str]] = []
        for ref in dict.fromkeys(refs):
            value = self.get(*ref)
            if value is None:
                missing.append(ref)
            else:
                found[ref] = value
        if missing:
            names = ", ".join(secret_env_name(*m) for m in missing)
            raise SecretMissingError(
                missing,
                [
                    f"the environment ({names})",
                    f"{self.file} (lines like {secret_env_name(*missing[0])}=...)",
                ],
            )
        return found
