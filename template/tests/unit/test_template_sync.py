"""scripts/template_sync.py reads what copier and the template's CHANGELOG.md give it.

The whole sync (git, copier, the pull request) is tested where the template is
maintained; these are the parts an owner may edit here.
"""

from __future__ import annotations

import pytest

from template_sync import Update, changelog_sections, clone_url, commit_message, version_key

CHANGELOG = """# Changelog

## [Unreleased]

- Not released yet.

## [1.2.0] - 2026-12-01

- Second change.

## [1.1.0] - 2026-11-15

- First change.

## [1.0.0] - 2026-11-01

- The version this service was rendered from.

[1.2.0]: https://example.com/compare/v1.1.0...v1.2.0
"""


def test_the_excerpt_holds_every_version_after_the_current_one_up_to_the_new_one() -> None:
    excerpt = changelog_sections(CHANGELOG, "v1.0.0", "v1.2.0")
    assert "Second change." in excerpt
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
