"""scripts/template_sync.py reads what copier and the template's CHANGELOG.md give it.

The whole sync (git, copier, the pull request) is tested where the template is
maintained; these are the parts an owner may edit here.
"""

from __future__ import annotations

import pytest

from template_sync import (
    Update,
    after_update_line,
    changelog_sections,
    clone_url,
    commit_message,
    is_local_source,
    is_refused_workflow_push,
    version_key,
)

CHANGELOG = """# Changelog

## [Unreleased]

- Not released yet.

## [1.2.0] - 2026-12-01

- Second change, thanks to @octocat and @acme/platform-team.

## [1.1.0] - 2026-11-15

- First change.

## [1.0.0] - 2026-11-01

- The version this service was rendered from.

[1.2.0]: https://example.com/compare/v1.1.0...v1.2.0
"""


def test_the_excerpt_holds_every_version_after_the_current_one_up_to_the_new_one() -> None:
    excerpt = changelog_sections(CHANGELOG, "v1.0.0", "v1.2.0")
    assert "Second change" in excerpt
    assert "First change." in excerpt
    assert excerpt.index("[1.2.0]") < excerpt.index("[1.1.0]")  # newest first, as written


def test_the_excerpt_leaves_out_the_current_version_unreleased_entries_and_link_references() -> None:
    excerpt = changelog_sections(CHANGELOG, "v1.0.0", "v1.2.0")
    assert "rendered from" not in excerpt
    assert "Not released yet." not in excerpt
    assert "https://example.com" not in excerpt


def test_a_version_between_tags_counts_as_the_tag_before_it() -> None:
    # copier records an untagged commit as `git describe` shows it.
    assert version_key("v1.1.0-3-g1a2b3c4") == (1, 1, 0)
    assert "First change." not in changelog_sections(CHANGELOG, "v1.1.0-3-g1a2b3c4", "v1.2.0")


@pytest.mark.parametrize(
    ("src_path", "url"),
    [
        ("gh:acme/copier-lambda-service", "https://github.com/acme/copier-lambda-service.git"),
        ("gh:acme/copier-lambda-service.git", "https://github.com/acme/copier-lambda-service.git"),
        ("gl:acme/platform/copier-lambda-service", "https://gitlab.com/acme/platform/copier-lambda-service.git"),
        ("git+https://git.example.com/t.git", "https://git.example.com/t.git"),
        ("git@github.com:acme/t.git", "git@github.com:acme/t.git"),
        ("/srv/templates/copier-lambda-service", "/srv/templates/copier-lambda-service"),
    ],
)
def test_copier_template_sources_become_what_git_clone_takes(src_path: str, url: str) -> None:
    assert clone_url(src_path) == url


def test_the_commit_names_both_versions_and_every_conflicted_file() -> None:
    update = Update("v1.0.0", "v1.1.0", ["README.md", "template.yaml.rej"], commit="0" * 40)
    message = commit_message(update.from_version, update.to_version, update.conflicts)
    assert message.splitlines()[0] == "Update the template from v1.0.0 to v1.1.0"
    assert "- README.md" in message
    assert "- template.yaml.rej" in message


def test_a_bare_commit_is_not_a_version() -> None:
    # copier records the commit itself when the template had no tag (a render from a clone without tags).
    assert version_key("231b655") is None
    assert version_key("v1.2") == (1, 2)


def test_from_a_bare_commit_the_excerpt_is_the_new_versions_entry_alone() -> None:
    excerpt = changelog_sections(CHANGELOG, "231b655", "v1.2.0")
    assert "Second change" in excerpt
    assert "First change." not in excerpt


def test_mentions_in_the_changelog_notify_nobody() -> None:
    excerpt = changelog_sections(CHANGELOG, "v1.1.0", "v1.2.0")
    assert "@octocat" not in excerpt
    assert "@acme/platform-team" not in excerpt
    assert "@\u200boctocat" in excerpt  # still reads as the name


@pytest.mark.parametrize(
    ("src_path", "local"),
    [
        ("gh:acme/copier-lambda-service", False),
        ("gl:acme/platform/copier-lambda-service", False),
        ("https://git.example.com/t.git", False),
        ("git+https://git.example.com/t.git", False),
        ("git@github.com:acme/t.git", False),
        ("/srv/templates/copier-lambda-service", True),
        ("../copier-lambda-service", True),
        ("file:///srv/templates/copier-lambda-service", True),
    ],
)
def test_a_template_on_someones_disk_is_told_apart_from_one_a_runner_can_clone(src_path: str, local: bool) -> None:
    assert is_local_source(src_path) is local


def test_the_after_update_report_is_found_among_copiers_output() -> None:
    output = "Updating to template version 1.2.0\nAfter update: uv.lock already matches pyproject.toml\n"
    assert after_update_line(output) == "After update: uv.lock already matches pyproject.toml"
    assert after_update_line("no report\n") == ""


@pytest.mark.parametrize(
    "message",
    [
        # The workflow's GITHUB_TOKEN (a GitHub App's).
        "! [remote rejected] template-sync (refusing to allow a GitHub App to create or update workflow "
        "`.github/workflows/ci.yml` without `workflows` permission)",
        # A person's gh login, and a personal access token.
        "! [remote rejected] template-sync (refusing to allow an OAuth App to create or update workflow "
        "`.github/workflows/ci.yml` without `workflow` scope)",
        "! [remote rejected] template-sync (refusing to allow a Personal Access Token to create or update "
        "workflow `.github/workflows/ci.yml` without `workflow` scope)",
    ],
)
def test_githubs_refusal_of_a_workflow_push_is_recognised_for_every_kind_of_token(message: str) -> None:
    assert is_refused_workflow_push(message)


def test_another_rejected_push_is_not_taken_for_a_workflow_refusal() -> None:
    assert not is_refused_workflow_push("! [remote rejected] template-sync (protected branch hook declined)")
