"""Where paperwire keeps its data and how it is configured (env vars, or config.toml in the home)."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

HOME_ENV = "PAPERWIRE_HOME"
CONFIG_NAME = "config.toml"


def default_home() -> Path:
    return Path(os.environ.get(HOME_ENV) or Path.home() / ".paperwire")


def load_config(home: Path) -> dict[str, Any]:
    """The home's config.toml (keys as the env vars, e.g. PAPERWIRE_SMTP_HOST), overridden by env."""
    values: dict[str, Any] = {}
    path = home / CONFIG_NAME
    if path.is_file():
        with open(path, "rb") as fh:
            values.update({str(k).upper(): v for k, v in tomllib.load(fh).items()})
    values.update({k: v for k, v in os.environ.items() if k.startswith("PAPERWIRE_")})
    return values
