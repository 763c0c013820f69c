"""Services rendered from real earlier versions of main update cleanly to the work tree.

For every baseline in tests/baselines.txt and every combination of the matrix
that the baseline offered, a service is rendered from that commit, committed,
edited the way an owner edits a service (a rule in logic.py, a changed alarm
threshold and a new resource in template.yaml, a test file, the README's first
paragraph, a dependency added with `uv add`), committed again, and updated with
`copier update` to the work tree, tagged in a throwaway clone of this
repository's history. The updated service must keep every owner edit, hold no
conflicts, be otherwise identical to a fresh render, keep uv.lock true, and
pass its own lint, type check and tests.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import hashlib
import re
import sys
import tempfile
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.version import Version

import judges
from cost_summary import note_suite_run
from once import once
from service_env import uv_executable
from template_repo import answers, commit_all, conflicted_files, copier, git, history_repo, project_files
from test_render_matrix import (
    EVENT_SOURCES,
    MATRIX,
    VARIANTS,
    Combination,
    Service,
    make_command,
    run_tool,
    seed_mypy_cache,
)

BASELINES_FILE = Path(__file__).with_name("baselines.txt")
AFTER_UPDATE_MESSAGE = "After update: "  # hooks/post_update.py, once per update
UV_ENV = judges.clean_env({"UV_PYTHON_DOWNLOADS": "never", "UV_NO_PROGRESS": "1"})


@dataclass(frozen=True)
class Baseline:
    commit: str
    version: str
    note: str


def read_baselines() -> list[Baseline]:
    baselines = []
    for line in BASELINES_FILE.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            commit, version, note = line.split(maxsplit=2)
            baselines.append(Baseline(commit, version, note))
    return baselines


BASELINES = read_baselines()
NEWEST = max(Version(b.version) for b in BASELINES)
# Newer than every baseline, as the next release will be.
HEAD_TAG = f"v{NEWEST.major}.{NEWEST.minor + 1}.0.dev0"


@functools.cache  # read for every combination of the matrix: once per commit
def questions_at(commit: str) -> dict[str, Any]:
    shown = judges.run(["git", "show", f"{commit}:copier.yml"], judges.REPO_ROOT)
    if shown.returncode != 0:
        raise RuntimeError(
            f"baseline {commit} is not in this clone's history ({shown.stderr.strip()}): "
            "tests/run.sh fetches it in a shallow clone; otherwise `git fetch --unshallow origin`"
        )
    loaded = yaml.safe_load(shown.stdout)
    return {key: value for key, value in loaded.items() if not key.startswith("_")}


def offered(combination: Combination, questions: dict[str, Any]) -> bool:
    """Whether a template with these questions could render `combination`."""
    for key, value in combination.answers.items():
        if key not in questions:
            return False
        choices = questions[key].get("choices") if isinstance(questions[key], dict) else None
        if choices is not None and value not in (choices.values() if isinstance(choices, dict) else choices):
            return False
    return True


@dataclass(frozen=True)
class Scenario:
    baseline: Baseline
    combination: Combination

    @property
    def id(self) -> str:
        return f"{self.baseline.version}-{self.combination.id}"


# Every combination is updated from the first and the latest release that offered it; a release in
# between, whose changes both of those updates apply too, only for the default combination of each
# source. So each release is updated from in every run, and the matrix x releases product does not
# grow with each release (about 25 s of CPU per scenario).
MIDDLE_RELEASE_COMBINATIONS = {f"{source}-dynamodb" for source in EVENT_SOURCES}


# A variant (another Python, cold_start, non-default answers) is its combination's files with a
# few answers changed: it is updated from the latest release that offered it only; its base
# combination's update from the first release covers the older history.
VARIANT_IDS = {variant.id for variant in VARIANTS}


def scenarios() -> list[Scenario]:
    chosen = []
    for combination in MATRIX:
        offering = [baseline for baseline in BASELINES if offered(combination, questions_at(baseline.commit))]
        for baseline in offering:
            ends = baseline in ((offering[-1],) if combination.id in VARIANT_IDS else (offering[0], offering[-1]))
            if ends or combination.id in MIDDLE_RELEASE_COMBINATIONS:
                chosen.append(Scenario(baseline, combination))
    return sorted(chosen, key=lambda scenario: BASELINES.index(scenario.baseline))


SCENARIOS = scenarios()


def unreleased(combinations: list[Combination] = MATRIX) -> list[Combination]:
    """Combinations of the matrix that no release offered: they have no update from a release to test yet.

    tests/test_update.py gives each the update round trip instead (a tag of the
    work tree to a later one), until the first release that offers it is a
    baseline here; from then on it is a scenario above, first and latest.
    """
    offering = {baseline.commit: questions_at(baseline.commit) for baseline in BASELINES}
    return [c for c in combinations if not any(offered(c, questions) for questions in offering.values())]


# ---------------------------------------------------------------- the owner's edits
OWNER_RULE = '''def needs_manual_review(total_cents: int) -> bool:
    """Orders of 1,000,000.00 or more are checked by a person before they ship."""
    return total_cents >= 100_000_000
'''
OWNER_TEST = """from {package}.logic import needs_manual_review


def test_orders_of_a_million_or_more_need_manual_review() -> None:
    assert needs_manual_review(100_000_000)
    assert not needs_manual_review(99_999_999)
"""
OWNER_RESOURCE = """  OrderEventsTopic:
    Type: AWS::SNS::Topic
    Properties:
      TopicName: !Sub "${{AWS::StackName}}-order-events"
      KmsMasterKeyId: alias/aws/sns
      Tags:
        - Key: service
          Value: {service_name}
        - Key: stage
          Value: !Ref Stage
"""
OWNER_THRESHOLD = "      Threshold: 5\n"
OWNER_README = "Owned by the checkout squad: page #checkout-oncall before anyone else."
OWNER_DEPENDENCY = "tenacity>=9.1"
# `uv add` and `make requirements` write these; they are checked by what they must contain.
DEPENDENCY_FILES = {
    "pyproject.toml": '"tenacity>=9.1"',
    "src/requirements.txt": "tenacity>=9.1",
    "uv.lock": 'name = "tenacity"',
}
# Written by `make requirements` too where the service has it (postgres: the migrate function's).
OPTIONAL_DEPENDENCY_FILES = {"src/requirements-migrate.txt": "tenacity>=9.1"}


def collides(before: str, owner: str, today: str) -> bool:
    """Whether the owner's change and the template's change (both from `before`) conflict.

    Asked of git merge-file, which copier falls back to when a change does not apply.
    """
    with tempfile.TemporaryDirectory() as scratch:
        paths = []
        for name, text in (("owner", owner), ("before", before), ("today", today)):
            (path := Path(scratch) / name).write_text(text)
            paths.append(str(path))
        merged = judges.run(["git", "merge-file", "--stdout", "--quiet", *paths], Path(scratch))
    return merged.returncode != 0


def end_of_function(lines: list[str], name: str) -> int:
    """The index just past the last line of top-level function `name`'s body."""
    start = next(i for i, line in enumerate(lines) if line.startswith(f"def {name}("))
    end = next((i for i in range(start + 1, len(lines)) if lines[i][:1] not in ("", " ", "\n")), len(lines))
    while not lines[end - 1].strip():
        end -= 1
    return end


def rule_placements(text: str) -> list[str]:
    """logic.py with the owner's rule next to the pricing rule: before it, after it, or at the end."""
    lines = text.splitlines(keepends=True)
    before = next(i for i, line in enumerate(lines) if line.startswith("def price_order("))
    after = end_of_function(lines, "price_order")
    return [
        "".join([*lines[:before], OWNER_RULE + "\n\n", *lines[before:]]),
        "".join([*lines[:after], "\n\n" + OWNER_RULE, *lines[after:]]),
        "".join([*lines, "\n\n" + OWNER_RULE]),
    ]


def set_throttles_threshold(text: str) -> str:
    lines = text.splitlines(keepends=True)
    start = lines.index("  ThrottlesAlarm:\n")
    end = next((i for i in range(start + 1, len(lines)) if re.match(r"^  \S", lines[i])), len(lines))
    [at] = [i for i in range(start, end) if lines[i].startswith("      Threshold: ")]
    lines[at] = OWNER_THRESHOLD
    return "".join(lines)


Edit = Callable[[str], str]


def rule_placement(baselines: list[str], today: str) -> int:
    """Where the owner's rule goes in logic.py: the first place that touches none of the
    template's own changes since any of the baselines (git merge-file says), else the first
    place that touches none since the first of them, else the first.

    A combination's scenarios pass every baseline they update from, so each owner puts the
    rule in the same place: the updated trees are then the same files, whose gates run once.
    """
    clear = [
        {i for i, edited in enumerate(rule_placements(baseline)) if not collides(baseline, edited, today)}
        for baseline in baselines
    ]
    return min(set.intersection(*clear) or clear[0] or {0})


def owner_edits(answers: dict[str, Any], placement: int) -> dict[str, Edit]:
    """What the owner changes, per file, as a function of the file's text.

    The same function edits the baseline's render before the update and
    today's render for the oracle: after the update each file must read as
    today's render with the owner's change, which catches a change applied in
    the wrong place as well as a lost one. A file the owner creates is an edit of "".
    """
    package = str(answers["package_name"])
    resource = OWNER_RESOURCE.format(service_name=answers["service_name"])
    description = str(answers["description"])
    return {
        f"src/{package}/logic.py": lambda text: rule_placements(text)[placement],
        "tests/unit/test_owner_rules.py": lambda _: OWNER_TEST.format(package=package),
        "template.yaml": lambda text: set_throttles_threshold(text).replace(
            "\nResources:\n", "\nResources:\n" + resource, 1
        ),
        "README.md": lambda text: text.replace(f"\n{description}\n", f"\n{description} {OWNER_README}\n", 1),
    }


def add_dependency(project: Path) -> None:
    """`uv add` as an owner runs it, then `make requirements` for what sam build reads."""
    added = judges.run([uv_executable(), "add", "--no-sync", "--quiet", OWNER_DEPENDENCY], project, UV_ENV)
    judges.assert_passes(added, "uv add")
    judges.assert_passes(judges.run([sys.executable, "scripts/write_requirements.py"], project), "make requirements")


# ---------------------------------------------------------------- render, edit, update
@pytest.fixture(scope="session")
def history_template(shared: Path) -> Path:
    """This repository's history with each baseline tagged, and the work tree on top as HEAD_TAG."""

    def build(directory: Path) -> dict[str, Any]:
        directory.mkdir()
        tags = {baseline.commit: baseline.version for baseline in BASELINES}
        return {"repo": str(history_repo(directory / "template", tags, HEAD_TAG))}

    return Path(once(shared, "history-template", build)["repo"])


def data_arguments(answers: dict[str, Any]) -> list[str]:
    return [argument for key, value in answers.items() for argument in ("--data", f"{key}={value}")]


def todays_render(shared: Path, history_template: Path, combination: Combination) -> Path:
    """The combination rendered from HEAD_TAG, the oracle of its update from every baseline.

    Rendered once per run, not once per baseline: the answers and the tag are
    the same, and the tests only read it.
    """

    def build(directory: Path) -> dict[str, Any]:
        directory.mkdir()
        fresh = directory / "fresh"
        arguments = ["copy", "--trust", "--defaults", *data_arguments(combination.answers)]
        copier(directory, *arguments, "--vcs-ref", HEAD_TAG, str(history_template), str(fresh))
        return {"fresh": str(fresh)}

    return Path(once(shared, f"history-fresh-{combination.id}", build)["fresh"])


@dataclass(frozen=True)
class Updated:
    scenario: Scenario
    project: Path
    fresh: Path  # the same answers rendered from HEAD_TAG: the oracle
    output: str
    placement: int  # where the owner put the rule in logic.py (rule_placements)
    # Per conflicted file: whether both sides changed the same lines, and what the update left in it.
    conflicts: dict[str, dict[str, Any]]
    unmerged: list[str]  # what `git status` called unmerged after the update

    @property
    def service(self) -> Service:
        return Service(f"history-{self.scenario.id}", self.project, answers(self.project))


def baseline_render(shared: Path, history_template: Path, scenario: Scenario) -> dict[str, Any]:
    """The scenario's service as rendered from its baseline and committed, and its logic.py as rendered.

    Its own step, so that the scenarios of a combination can place the owner's rule where
    it suits all their baselines (rule_placement) before any of them edits its service.
    """

    def build(directory: Path) -> dict[str, Any]:
        directory.mkdir()
        project = directory / "service"
        arguments = ["copy", "--trust", "--defaults", *data_arguments(scenario.combination.answers)]
        copier(directory, *arguments, "--vcs-ref", scenario.baseline.version, str(history_template), str(project))
        commit_all(project, f"Service rendered from template {scenario.baseline.version}")
        logic = project / "src" / str(answers(project)["package_name"]) / "logic.py"
        return {"project": str(project), "logic": logic.read_text()}

    return once(shared, f"history-baseline-{scenario.id}", build)


@pytest.fixture(params=[pytest.param(s, id=s.id) for s in SCENARIOS])
def updated(request: pytest.FixtureRequest, shared: Path, history_template: Path) -> Updated:
    """The scenario's service after `copier update`, real conflicts resolved as its owner would."""
    scenario: Scenario = request.param

    def build(_: Path) -> dict[str, Any]:
        rendered_baseline = baseline_render(shared, history_template, scenario)
        project = Path(rendered_baseline["project"])
        fresh = todays_render(shared, history_template, scenario.combination)
        recorded = answers(project)
        logic = f"src/{recorded['package_name']}/logic.py"
        # This scenario's baseline first: where no place suits them all, the rule goes where it suits this one.
        baselines = [rendered_baseline["logic"]]
        for sibling in SCENARIOS:
            if sibling.combination == scenario.combination and sibling != scenario:
                with contextlib.suppress(pytest.fail.Exception):  # its render failed: its own scenario says so
                    baselines.append(baseline_render(shared, history_template, sibling)["logic"])
        placement = rule_placement(baselines, (fresh / logic).read_text())
        edits = owner_edits(recorded, placement)
        rendered = {name: (project / name).read_text() if (project / name).exists() else "" for name in edits}
        for name, edit in edits.items():
            (project / name).write_text(edit(rendered[name]))
        add_dependency(project)
        commit_all(project, "Owner edits: a rule, an alarm, a topic, a test, the README, a dependency")

        done = copier(project, "update", "--trust", "--defaults", "--vcs-ref", HEAD_TAG)
        unmerged = git(project, "diff", "--name-only", "--diff-filter=U").split()
        conflicts = {}
        for name in conflicted_files(project):
            left = (project / name).read_text(errors="replace")
            touching = name in edits and (fresh / name).is_file()  # files the owner and the template share
            touching = touching and collides(rendered[name], edits[name](rendered[name]), (fresh / name).read_text())
            conflicts[name] = {"touching": touching, "left": left}
            if touching:  # the owner takes the template's new file and makes the change again
                (project / name).write_text(edits[name]((fresh / name).read_text()))
                git(project, "add", name)
        return {
            "project": str(project),
            "fresh": str(fresh),
            "output": done.stdout + done.stderr,
            "placement": placement,
            "conflicts": conflicts,
            "unmerged": unmerged,
        }

    done = once(shared, f"history-{scenario.id}", build)
    return Updated(
        scenario,
        Path(done["project"]),
        Path(done["fresh"]),
        done["output"],
        done["placement"],
        done["conflicts"],
        done["unmerged"],
    )


# ---------------------------------------------------------------- what the owner sees
def test_baselines_are_commits_of_main_in_release_order() -> None:
    assert BASELINES[0].commit == "82ffb21", "the first baseline is the first complete template"
    versions = [Version(b.version) for b in BASELINES]
    assert versions == sorted(versions) and len(set(versions)) == len(versions)
    for baseline in BASELINES:
        found = judges.run(["git", "merge-base", "--is-ancestor", baseline.commit, "HEAD"], judges.REPO_ROOT)
        assert found.returncode == 0, (
            f"baseline {baseline.commit} ({baseline.version}) is not in the history of HEAD; "
            "a shallow clone has no history: `git fetch --unshallow`"
        )
    assert {s.baseline for s in SCENARIOS} == set(BASELINES), "a baseline offered no combination of the matrix"


def test_a_combination_is_updated_only_from_the_baselines_that_offered_it() -> None:
    first = questions_at(BASELINES[0].commit)
    assert offered(Combination("sqs-none", {"event_source": "sqs", "database": "none"}), first)
    assert not offered(Combination("kinesis-none", {"event_source": "kinesis", "database": "none"}), first)
    assert not offered(Combination("snapstart", {"event_source": "api", "cold_start": "snapstart"}), first)
    assert {s.combination.id for s in SCENARIOS if s.baseline == BASELINES[0]} <= {c.id for c in MATRIX}


def test_a_combination_no_release_offered_is_left_to_the_round_trip() -> None:
    released = Combination("sqs-none", {"event_source": "sqs", "database": "none"})
    new = Combination("kinesis-none", {"event_source": "kinesis", "database": "none"})
    assert unreleased([released, new]) == [new]
    assert not {s.combination.id for s in SCENARIOS} & {c.id for c in unreleased()}


def test_update_leaves_no_conflict_where_only_one_side_changed(updated: Updated) -> None:
    spurious = [name for name, conflict in updated.conflicts.items() if not conflict["touching"]]
    assert not spurious, f"conflicts although owner and template changed different lines: {spurious}\n{updated.output}"


def test_a_conflict_where_both_sides_changed_is_inline_and_unmerged(updated: Updated) -> None:
    """Copier's documented form: inline markers, and the file unmerged in git, never a silent pick."""
    for name, conflict in updated.conflicts.items():
        assert "<<<<<<< before updating" in conflict["left"] and ">>>>>>> after updating" in conflict["left"], name
    assert sorted(updated.unmerged) == sorted(updated.conflicts)


def test_every_owner_edit_is_in_todays_file_in_its_place(updated: Updated) -> None:
    """Each edited file reads as today's render with the owner's change: kept, and where the owner made it."""
    for name, edit in owner_edits(updated.service.answers, updated.placement).items():
        today = (updated.fresh / name).read_text() if (updated.fresh / name).is_file() else ""
        expected, ours = edit(today), (updated.project / name).read_text()
        assert ours == expected, (
            f"{name}: the owner's edit is lost or was applied elsewhere by the update from "
            f"{updated.scenario.baseline.version}:\n"
            + "".join(difflib.unified_diff(expected.splitlines(True), ours.splitlines(True), "expected", "updated"))
        )
    for name, text in DEPENDENCY_FILES.items():
        assert text in (updated.project / name).read_text(), f"the owner's dependency is gone from {name}"
    for name, text in OPTIONAL_DEPENDENCY_FILES.items():
        if (updated.fresh / name).exists():
            assert text in (updated.project / name).read_text(), f"the owner's dependency is gone from {name}"


def test_update_records_the_new_template_version(updated: Updated, history_template: Path) -> None:
    answers = updated.service.answers
    assert answers["_commit"] == HEAD_TAG
    assert answers["_src_path"] == str(history_template)
    assert f"template {HEAD_TAG}" in (updated.project / "README.md").read_text()


def test_update_gives_todays_files_except_where_the_owner_edited(updated: Updated) -> None:
    """Files the template renamed or removed are gone, new ones are there, untouched ones are today's."""
    ours, fresh = project_files(updated.project), project_files(updated.fresh)
    owned = {*owner_edits(updated.service.answers, updated.placement), *DEPENDENCY_FILES, *OPTIONAL_DEPENDENCY_FILES}
    assert set(ours) - owned == set(fresh) - owned, (
        f"left over from {updated.scenario.baseline.version}: {sorted(set(ours) - owned - set(fresh))}; "
        f"missing: {sorted(set(fresh) - set(ours))} (a renamed or removed file needs a _migrations entry)"
    )
    differ = [name for name in fresh if name not in owned and ours[name].read_bytes() != fresh[name].read_bytes()]
    assert not differ, f"differ from a fresh render although the owner never touched them: {differ}"


def test_update_keeps_uv_lock_true_to_the_merged_pyproject(updated: Updated) -> None:
    assert updated.output.count(AFTER_UPDATE_MESSAGE) == 1, updated.output
    checked = judges.run([uv_executable(), "lock", "--check"], updated.project, UV_ENV)
    judges.assert_passes(checked, "uv lock --check (what CI's UV_LOCKED enforces)")


# ---------------------------------------------------------------- the updated service's own gates
def tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for name, path in project_files(root).items():
        digest.update(f"{name}\0{len(path.read_bytes())}\0".encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def gate(shared: Path, updated: Updated, name: str, *command: str) -> None:
    """Run a gate of the updated service once per distinct tree.

    The same combination updated from different baselines usually ends as the
    same files (test_update_gives_todays_files... proves everything but the
    owner's edits is today's render): a gate over identical files has one
    outcome, so it runs once and every scenario with that tree shares it.
    """
    # The matrix's cache directory for this combination: mypy rechecks only what differs.
    service = Service(updated.scenario.combination.id, updated.project, updated.service.answers)

    def run(_: Path) -> dict[str, Any]:
        done = run_tool(service, *command)
        judges.assert_passes(done, f"{name} of the service updated from {updated.scenario.baseline.version}")
        return {"stdout": done.stdout}

    outcome = once(shared, f"history-gate-{name}-{tree_digest(updated.project)}", run)
    if name == "pytest":
        note_suite_run(outcome["stdout"])
        assert "PASSED tests/unit/test_owner_rules.py::" in outcome["stdout"], "the owner's own test did not run"


def test_updated_service_passes_ruff(shared: Path, updated: Updated) -> None:
    """ruff on the Python files the owner edited: the only ones whose verdict can differ.

    Every other file is byte for byte today's render (test_update_gives_todays_files...),
    which the matrix's ruff gates passed, and ruff's verdict on a file depends only on
    the file and its configuration, which is today's too (checked here).
    """
    ours, fresh = (tomllib.loads((root / "pyproject.toml").read_text()) for root in (updated.project, updated.fresh))
    assert ours["tool"]["ruff"] == fresh["tool"]["ruff"], "the update changed ruff's configuration"
    edited = sorted(name for name in owner_edits(updated.service.answers, updated.placement) if name.endswith(".py"))
    gate(shared, updated, "ruff-check", "-m", "ruff", "check", *edited)
    gate(shared, updated, "ruff-format", "-m", "ruff", "format", "--check", *edited)


def test_updated_service_passes_mypy_strict(shared: Path, updated: Updated) -> None:
    arguments = make_command(updated.project, "typecheck", "mypy")
    seed_mypy_cache(
        shared, Service(updated.scenario.combination.id, updated.project, updated.service.answers), arguments
    )
    gate(shared, updated, "mypy", "-m", "mypy", *arguments)


def test_updated_service_passes_its_own_tests(shared: Path, updated: Updated) -> None:
    gate(shared, updated, "pytest", "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider")


# ---------------------------------------------------------------- a conflict, as copier reports it
@pytest.fixture(scope="session")
def conflicted(shared: Path, history_template: Path) -> dict[str, Any]:
    """An owner rewrote a README line that the template also rewrote since the first baseline."""
    baseline = BASELINES[0]

    def build(directory: Path) -> dict[str, Any]:
        directory.mkdir()
        project = directory / "service"
        copier(
            directory,
            "copy",
            "--trust",
            "--defaults",
            "--vcs-ref",
            baseline.version,
            str(history_template),
            str(project),
        )
        commit_all(project, f"Service rendered from template {baseline.version}")
        readme = project / "README.md"
        before = readme.read_text().splitlines()
        fresh = directory / "fresh"
        copier(directory, "copy", "--trust", "--defaults", "--vcs-ref", HEAD_TAG, str(history_template), str(fresh))
        today = (fresh / "README.md").read_text().splitlines()
        opcodes = difflib.SequenceMatcher(None, before, today, autojunk=False).get_opcodes()
        line = next(i1 for tag, i1, i2, _, _ in opcodes if tag == "replace" and before[i1].strip())
        owner_line = "The owner rewrote this line, and so did the template."
        readme.write_text("".join(owner_line + "\n" if i == line else text + "\n" for i, text in enumerate(before)))
        commit_all(project, "Owner rewrites a README line")
        done = copier(project, "update", "--trust", "--defaults", "--vcs-ref", HEAD_TAG)
        return {"project": str(project), "owner_line": owner_line, "output": done.stdout + done.stderr}

    return once(shared, "history-conflict", build)


def test_a_real_conflict_is_left_inline_and_marked_unmerged(conflicted: dict[str, Any]) -> None:
    project = Path(conflicted["project"])
    readme = (project / "README.md").read_text()
    assert "<<<<<<< before updating" in readme and ">>>>>>> after updating" in readme
    ours = readme.split("<<<<<<< before updating", 1)[1].split("=======", 1)[0]
    assert conflicted["owner_line"] in ours, "the owner's side of the conflict is the owner's line"
    unmerged = git(project, "diff", "--name-only", "--diff-filter=U").split()
    assert unmerged == ["README.md"], "git status shows the conflicted file as unmerged, like a merge"
    assert not list(project.rglob("*.rej"))


def test_the_service_readme_says_how_to_resolve_a_conflict(conflicted: dict[str, Any]) -> None:
    readme = (Path(conflicted["project"]) / "README.md").read_text()
    section = readme.split("## Keeping up to date", 1)[1]
    assert "<<<<<<< before updating" in section and "git add" in section
