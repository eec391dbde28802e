"""Property-based fuzzing of every operation in the served OpenAPI spec: no input gives a 5xx."""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from conftest import copy_home
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from web_server import serve

EXAMPLES_PER_OPERATION = 25


@pytest.fixture(scope="module")
def base(seed_home: Path, tmp_path_factory: pytest.TempPathFactory):
    home = copy_home(seed_home, tmp_path_factory.mktemp("web-schema") / "home")
    with serve(home) as url:
        yield url


def test_no_server_errors_on_any_operation(base: str) -> None:
    schema = schemathesis.openapi.from_url(base + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15  # pages, the JSON API, /api/query and the feeds are all described
    failures: list[str] = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck),
                  database=None)
        def fuzz(case) -> None:
            case.call_and_validate(base_url=base, checks=[not_a_server_error], timeout=60)

        try:
            fuzz()
        except Exception as exc:  # collect every operation's failure, then report them together
            failures.append(f"{operation.method.upper()} {operation.path}: {str(exc)[:600]}")
    assert not failures, "\n\n".join(failures)
