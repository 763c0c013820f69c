"""src/requirements*.txt are what `sam build` installs: they must match pyproject.toml."""

from __future__ import annotations

from write_requirements import GROUP_REQUIREMENTS, files


def test_requirements_files_match_pyproject_dependencies() -> None:
    for path, text in files().items():
        assert path.is_file(), f"{path.name} is missing: run `make requirements` and commit the result"
        assert path.read_text(encoding="utf-8") == text, f"{path.name} is stale: run `make requirements`"


def test_no_requirements_file_is_left_for_a_dependency_group_that_is_gone() -> None:
    wanted = files()
    assert not [path.name for path in GROUP_REQUIREMENTS.values() if path.exists() and path not in wanted]


def test_the_package_does_not_ship_what_the_lambda_runtime_provides() -> None:
    for path in files():
        shipped = path.read_text(encoding="utf-8").lower()
        assert "boto3" not in shipped, path.name
        assert "botocore" not in shipped, path.name
