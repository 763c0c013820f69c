"""`copier update` brings a new template version into a service and keeps its owner's edits.

The round trip uses real tags: this template's current content (committed or
not) becomes a repository tagged v1.0.0, then gets a change tagged v1.1.0; a
service is copied from v1.0.0, edited by its owner, and updated to v1.1.0.

It runs for the default answers, and for one combination of each event source that
no release offered yet (tests/test_update_history.py updates the others from
the real releases that offered them).
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import judges
from once import once
from template_repo import answers, commit_all, conflicted_files, copier, git, snapshot_repo
from test_render_matrix import Combination, Service, run_tool
from test_update_history import data_arguments, unreleased

OWNER_EDIT = '''

def owner_added_rule(total: int) -> bool:
    """Added by the owner after the copy."""
    return total > 0
'''
TEMPLATE_CHANGE = "Template v1.1.0 added this line."
POST_COPY_MESSAGE = "Initialised a git repository"  # hooks/post_copy.py says it when it runs


def build_template_repo(repo: Path) -> dict[str, Any]:
    """The template as it is in this work tree, in a repository of its own tagged v1.0.0, and v1.1.0 on top."""
    snapshot_repo(repo, "v1.0.0")
    readme = repo / "template" / "README.md.jinja"
    readme.write_text(readme.read_text() + f"\n{TEMPLATE_CHANGE}\n")
    commit_all(repo, "Template v1.1.0")
    git(repo, "tag", "v1.1.0")
    return {"repo": str(repo)}


@pytest.fixture
def template_repo(shared: Path) -> Path:
    return Path(once(shared, "update-template", build_template_repo)["repo"])


DEFAULTS = Combination("defaults", {})  # what `copier copy --defaults` renders: sqs-dynamodb
# Most files and the most questions first: what a round trip can break is copier's handling
# of the source's own files, and postgres renders every one of them (and the migrations).
DATABASE_PREFERENCE = ("postgres", "dynamodb", "none")


def one_per_source(combinations: list[Combination]) -> list[Combination]:
    """Of the combinations no release offered, one per event source: its postgres one if any.

    The round trip's verdict (copy, owner edit, update, no conflict, no post-copy rerun) is
    copier's over the rendered files; the databases of a source share its slot files and
    differ by the database slot, which the released combinations' real updates cover. Each
    round trip costs about 16 s of CPU; one per database of every new source was 13 of them.
    """
    chosen: dict[str, Combination] = {}
    for combination in sorted(
        (c for c in combinations if set(c.answers) == {"event_source", "database"}),
        key=lambda c: DATABASE_PREFERENCE.index(c.answers["database"]),
    ):
        chosen.setdefault(combination.answers["event_source"], combination)
    return list(chosen.values())


ROUND_TRIPS = [DEFAULTS, *one_per_source(unreleased())]


@pytest.fixture(params=[pytest.param(c, id=c.id) for c in ROUND_TRIPS])
def combination(request: pytest.FixtureRequest) -> Combination:
    return request.param


def suffix(combination: Combination) -> str:
    """The once() key's ending: the default combination keeps the keys it always had."""
    return "" if combination is DEFAULTS else f"-{combination.id}"


@dataclass(frozen=True)
class Rendered:
    """A service copier wrote, and what copier printed while writing it."""

    project: Path
    output: str


@pytest.fixture
def copied(shared: Path, template_repo: Path, combination: Combination) -> Rendered:
    def build(directory: Path) -> dict[str, Any]:
        project = directory / "order-service"
        done = copier(
            template_repo.parent,
            "copy",
            "--trust",
            "--defaults",
            *data_arguments(combination.answers),
            "--vcs-ref",
            "v1.0.0",
            str(template_repo),
            str(project),
        )
        return {"project": str(project), "output": done.stdout + done.stderr}

    done = once(shared, f"update-copy{suffix(combination)}", build)
    return Rendered(Path(done["project"]), done["output"])


@dataclass(frozen=True)
class Updated:
    project: Path
    logic: Path
    output: str


@pytest.fixture
def updated(shared: Path, copied: Rendered, combination: Combination) -> Updated:
    def build(directory: Path) -> dict[str, Any]:
        # Its own copy of the service: the tests of the copy keep seeing v1.0.0.
        project = directory / copied.project.name
        shutil.copytree(copied.project, project, symlinks=True)
        commit_all(project, "Service rendered from template v1.0.0")

        logic = project / "src" / str(answers(project)["package_name"]) / "logic.py"
        logic.write_text(logic.read_text() + OWNER_EDIT)
        commit_all(project, "Owner adds a business rule")

        done = copier(project, "update", "--defaults", "--trust", "--vcs-ref", "v1.1.0")
        return {"project": str(project), "logic": str(logic), "output": done.stdout + done.stderr}

    done = once(shared, f"update-update{suffix(combination)}", build)
    return Updated(Path(done["project"]), Path(done["logic"]), done["output"])


def test_copy_leaves_the_service_a_git_repository(copied: Rendered) -> None:
    assert (copied.project / ".git").is_dir()
    assert Path(git(copied.project, "rev-parse", "--show-toplevel").strip()) == copied.project.resolve()


def test_copy_records_the_template_source_and_version(copied: Rendered, template_repo: Path) -> None:
    recorded = answers(copied.project)
    assert recorded["_src_path"] == str(template_repo)
    assert recorded["_commit"] == "v1.0.0"


def test_update_keeps_the_owners_edit(updated: Updated) -> None:
    assert OWNER_EDIT in updated.logic.read_text()


def test_update_brings_the_template_change(updated: Updated) -> None:
    assert TEMPLATE_CHANGE in (updated.project / "README.md").read_text()


def test_update_leaves_no_conflicts(updated: Updated) -> None:
    conflicted = conflicted_files(updated.project)
    assert not conflicted, f"conflicts after update: {conflicted}\n{updated.output}"


def test_update_records_the_new_version(updated: Updated) -> None:
    assert answers(updated.project)["_commit"] == "v1.1.0"


def test_update_does_not_rerun_the_post_copy_task(copied: Rendered, updated: Updated) -> None:
    assert POST_COPY_MESSAGE in copied.output, "the post-copy task did not run on copy"
    assert POST_COPY_MESSAGE not in updated.output, updated.output


# ---------------------------------------------------------------- answers changed later
def committed_copy(source: Path, directory: Path) -> Path:
    """The updated service, committed by its owner, in a directory of its own."""
    directory.mkdir()
    project = directory / source.name
    shutil.copytree(source, project, symlinks=True)
    commit_all(project, "Owner commits the template update")
    return project


# What the owner may and may not change later is the same for every combination: the default's.
ONLY_THE_DEFAULTS = pytest.mark.parametrize("combination", [DEFAULTS], ids=[DEFAULTS.id])


@pytest.fixture
def reanswered(shared: Path, updated: Updated) -> Rendered:
    def build(directory: Path) -> dict[str, Any]:
        project = committed_copy(updated.project, directory)
        done = copier(
            project,
            "update",
            "--defaults",
            "--trust",
            "--vcs-ref",
            "v1.1.0",
            "--data",
            "memory_size=1024",
            "--data",
            "alarm_email=oncall@example.com",
        )
        return {"project": str(project), "output": done.stdout + done.stderr}

    done = once(shared, "update-reanswered", build)
    return Rendered(Path(done["project"]), done["output"])


@ONLY_THE_DEFAULTS
def test_a_changed_answer_is_rendered_and_remembered(reanswered: Rendered) -> None:
    recorded = answers(reanswered.project)
    assert (recorded["memory_size"], recorded["alarm_email"]) == (1024, "oncall@example.com")
    template = (reanswered.project / "template.yaml").read_text()
    assert "MemorySize: 1024" in template
    assert 'Default: "oncall@example.com"' in template, "the AlarmEmail parameter subscribes the new address"
    readme = (reanswered.project / "README.md").read_text()
    assert "1024 MB" in readme and "oncall@example.com" in readme
    # The after-update step ran once more, and found nothing to change.
    assert reanswered.output.count("After update: ") == 1
    assert "After update: uv.lock already matches pyproject.toml" in reanswered.output


@ONLY_THE_DEFAULTS
def test_a_changed_answer_keeps_the_owners_edits_and_the_services_checks(reanswered: Rendered) -> None:
    package = str(answers(reanswered.project)["package_name"])
    assert OWNER_EDIT in (reanswered.project / "src" / package / "logic.py").read_text()
    service = Service("update-reanswered", reanswered.project, answers(reanswered.project))
    done = run_tool(service, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/readiness", "tests/unit")
    judges.assert_passes(done, "the service's readiness and unit tests after the new answers")


@ONLY_THE_DEFAULTS
@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ("event_source=api", "event_source cannot change once a service is rendered (this one is event_source=sqs)"),
        ("database=none", "database cannot change once a service is rendered (this one is database=dynamodb)"),
    ],
)
def test_changing_what_the_service_is_is_refused_and_writes_nothing(
    tmp_path: Path, updated: Updated, answer: str, message: str
) -> None:
    project = committed_copy(updated.project, tmp_path / "service")
    head = git(project, "rev-parse", "HEAD")
    done = judges.run(
        [sys.executable, "-m", "copier", "update", "--defaults", "--trust", "--vcs-ref", "v1.1.0", "--data", answer],
        project,
    )
    assert done.returncode != 0
    assert message in done.stderr and "Render a new service with `copier copy" in done.stderr, done.stderr
    assert git(project, "status", "--porcelain", "--ignored") == "", "a refused update must leave the tree as it was"
    assert git(project, "rev-parse", "HEAD") == head
