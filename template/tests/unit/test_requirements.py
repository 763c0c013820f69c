"""src/requirements.txt is what `sam build` installs: it must match pyproject.toml."""

from __future__ import annotations

from write_requirements import REQUIREMENTS, render


def test_requirements_txt_matches_pyproject_runtime_dependencies() -> None:
    assert REQUIREMENTS.read_text(encoding="utf-8") == render(), "run `make requirements` and commit the result"


def test_the_package_does_not_ship_what_the_lambda_runtime_provides() -> None:
    shipped = REQUIREMENTS.read_text(encoding="utf-8").lower()
    assert "boto3" not in shipped
    assert "botocore" not in shipped
