"""What a server runs beside its requests: one service object of each kind per site, and long jobs as a
`paperwire` command in a separate process at low CPU priority, so that requests keep their cores, their
memory and the interpreter's lock."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
_services: weakref.WeakKeyDictionary[Any, dict[Callable[..., Any], Any]] = weakref.WeakKeyDictionary()
_services_lock = threading.Lock()


def site_service(site: Any, make: Callable[[Any], T]) -> T:
    """The site's one service made by `make(site)`, made on first use."""
    with _services_lock:
        services = _services.setdefault(site, {})
        if make not in services:
            services[make] = make(site)
        return services[make]


def paperwire_process(home: Path, *args: str, niceness: int = 10) -> subprocess.Popen[str]:
    """`paperwire --home HOME ARGS…` started under `nice` (no preexec_fn: the server runs threads), its
    output captured."""
    command = [sys.executable, "-m", "paperwire.cli", "--home", str(home), *args]
    nice = shutil.which("nice")
    if nice:
        command = [nice, "-n", str(niceness), *command]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PAPERWIRE_HOME": str(home)})


def last_line(text: str) -> str:
    """The last non-empty line of a job's output (its one-line error)."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "?"
