"""Property-based fuzzing of every operation in the served OpenAPI spec: no input gives a 5xx."""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from conftest import copy_home
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from web_server import serve


@pytest.fixture(scope="module")
def base(seed_home: Path, tmp_path_factory: pytest.TempPathFactory):
    home = copy_home(seed_home, tmp_path_factory.mktemp("web-schema") / "home")
    with serve(home) as url:
        yield url


@pytest.fixture(scope="module")
def api_schema(base: str):
    return schemathesis.openapi.from_url(base + "/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case, base: str) -> None:
    case.call_and_validate(base_url=base, checks=[not_a_server_error], timeout=60)
