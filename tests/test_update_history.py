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

import difflib
import re
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.version import Version

import judges
from once import once
from service_env import uv_executable
from template_repo import commit_all, copier, git, history_repo
from test_render_matrix import MATRIX, Combination, Service, make_command, run_tool

BASELINES_FILE = Path(__file__).with_name("baselines.txt")
CONFLICT_MARKER = re.compile(r"^(<<<<<<<|>>>>>>>)( |$)", re.MULTILINE)
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


def questions_at(commit: str) -> dict[str, Any]:
    loaded = yaml.safe_load(git(judges.REPO_ROOT, "show", f"{commit}:copier.yml"))
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


SCENARIOS = [
    Scenario(baseline, combination)
    for baseline in BASELINES
    for combination in MATRIX
    if offered(combination, questions_at(baseline.commit))
]


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
OWNER_THRESHOLD = "      Threshold: 5"
OWNER_README = "Owned by the checkout squad: page #checkout-oncall before anyone else."
OWNER_DEPENDENCY = "tenacity>=9.1"


def replace_line(path: Path, find: Callable[[list[str]], int], new: str) -> None:
    lines = path.read_text().splitlines(keepends=True)
    lines[find(lines)] = new + "\n"
    path.write_text("".join(lines))


def collides(before: list[str], owner: list[str], today: list[str]) -> bool:
    """Whether the owner's change and the template's change (both from `before`) conflict.

    Asked of git merge-file, which copier falls back to when a change does not apply.
    """
    with tempfile.TemporaryDirectory() as scratch:
        paths = []
        for name, lines in (("owner", owner), ("before", before), ("today", today)):
            (path := Path(scratch) / name).write_text("".join(lines))
            paths.append(str(path))
        merged = judges.run(["git", "merge-file", "--stdout", "--quiet", *paths], Path(scratch))
    return merged.returncode != 0


def insert_rule(lines: list[str], today: list[str]) -> list[str]:
    """`lines` with the owner's rule where an owner would put it, next to the pricing rule:
    after it if the template keeps the lines there, else before it, else at the end."""
    before = next(i for i, line in enumerate(lines) if line.startswith("def price_order("))
    after = end_of_function(lines, "price_order")
    edited = [
        [*lines[:after], "\n\n" + OWNER_RULE, *lines[after:]],
        [*lines[:before], OWNER_RULE + "\n\n", *lines[before:]],
        [*lines, "\n\n" + OWNER_RULE],
    ]
    return next(
        (e for e in edited if not collides(lines, "".join(e).splitlines(keepends=True), today)),
        edited[0],  # it collides everywhere: test_update_leaves_no_conflicts... says so
    )


def end_of_function(lines: list[str], name: str) -> int:
    """The index just past the last line of top-level function `name`'s body."""
    start = next(i for i, line in enumerate(lines) if line.startswith(f"def {name}("))
    end = next((i for i in range(start + 1, len(lines)) if lines[i][:1] not in ("", " ", "\n")), len(lines))
    while not lines[end - 1].strip():
        end -= 1
    return end


def throttles_threshold(lines: list[str]) -> int:
    start = lines.index("  ThrottlesAlarm:\n")
    return next(i for i in range(start, len(lines)) if lines[i].startswith("      Threshold: "))


def apply_owner_edits(project: Path, answers: dict[str, Any], today: Path) -> dict[str, list[str]]:
    """Edit the service as its owner would; return, per file, the text that must survive.

    `today` is the same service rendered from the template under test.
    """
    package = str(answers["package_name"])
    logic = project / "src" / package / "logic.py"
    lines = logic.read_text().splitlines(keepends=True)
    logic.write_text(
        "".join(insert_rule(lines, (today / logic.relative_to(project)).read_text().splitlines(keepends=True)))
    )
    (project / "tests" / "unit" / "test_owner_rules.py").write_text(OWNER_TEST.format(package=package))

    template = project / "template.yaml"
    replace_line(template, throttles_threshold, OWNER_THRESHOLD)
    text = template.read_text()
    resource = OWNER_RESOURCE.format(service_name=answers["service_name"])
    template.write_text(text.replace("\nResources:\n", "\nResources:\n" + resource, 1))

    description = str(answers["description"])
    replace_line(project / "README.md", lambda lines: lines.index(description + "\n"), f"{description} {OWNER_README}")

    # `uv add` as an owner runs it, then `make requirements` for what sam build reads.
    judges.assert_passes(
        judges.run([uv_executable(), "add", "--no-sync", "--quiet", OWNER_DEPENDENCY], project, UV_ENV), "uv add"
    )
    judges.assert_passes(judges.run([sys.executable, "scripts/write_requirements.py"], project), "make requirements")
    return {
        f"src/{package}/logic.py": [OWNER_RULE.strip()],
        "tests/unit/test_owner_rules.py": [OWNER_TEST.format(package=package).strip()],
        "template.yaml": [resource.rstrip(), OWNER_THRESHOLD],
        "README.md": [OWNER_README],
        "pyproject.toml": ['"tenacity>=9.1'],
        "src/requirements.txt": ["tenacity>=9.1"],
        "uv.lock": ['name = "tenacity"'],
    }


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


@dataclass(frozen=True)
class Updated:
    scenario: Scenario
    project: Path
    fresh: Path  # the same answers rendered from HEAD_TAG, for comparison
    output: str
    owner_edits: dict[str, list[str]]

    @property
    def service(self) -> Service:
        answers = yaml.safe_load((self.project / ".copier-answers.yml").read_text())
        return Service(f"history-{self.scenario.id}", self.project, answers)


@pytest.fixture(params=[pytest.param(s, id=s.id) for s in SCENARIOS])
def updated(request: pytest.FixtureRequest, shared: Path, history_template: Path) -> Updated:
    scenario: Scenario = request.param

    def build(directory: Path) -> dict[str, Any]:
        directory.mkdir()
        project, fresh = directory / "service", directory / "fresh"
        arguments = ["copy", "--trust", "--defaults", *data_arguments(scenario.combination.answers)]
        copier(directory, *arguments, "--vcs-ref", scenario.baseline.version, str(history_template), str(project))
        commit_all(project, f"Service rendered from template {scenario.baseline.version}")
        answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
        copier(directory, *arguments, "--vcs-ref", HEAD_TAG, str(history_template), str(fresh))
        owner_edits = apply_owner_edits(project, answers, fresh)
        commit_all(project, "Owner edits: a rule, an alarm, a topic, a test, the README, a dependency")
        done = copier(project, "update", "--trust", "--defaults", "--vcs-ref", HEAD_TAG)
        return {
            "project": str(project),
            "fresh": str(fresh),
            "output": done.stdout + done.stderr,
            "owner_edits": owner_edits,
        }

    done = once(shared, f"history-{scenario.id}", build)
    return Updated(scenario, Path(done["project"]), Path(done["fresh"]), done["output"], done["owner_edits"])


def project_files(root: Path) -> dict[str, Path]:
    return {
        str(path.relative_to(root)): path
        for path in sorted(root.rglob("*"))
        if path.is_file() and ".git" not in path.relative_to(root).parts
    }


def rendered_at_baseline(updated: Updated, name: str) -> str:
    """`name` as the baseline rendered it: the service's first commit."""
    first = git(updated.project, "rev-list", "--max-parents=0", "HEAD").strip()
    return git(updated.project, "show", f"{first}:{name}")


def template_changes_touching_owner_lines(updated: Updated, name: str) -> bool:
    """Whether the template changed, between the baseline and today, lines next to the owner's edit."""
    if not (updated.fresh / name).is_file():
        return True
    return collides(
        rendered_at_baseline(updated, name).splitlines(keepends=True),
        git(updated.project, "show", f"HEAD:{name}").splitlines(keepends=True),  # the update is not committed
        (updated.fresh / name).read_text().splitlines(keepends=True),
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


def test_update_keeps_every_owner_edit(updated: Updated) -> None:
    lost = [
        f"{name}: {text!r}"
        for name, texts in updated.owner_edits.items()
        for text in texts
        if text not in (updated.project / name).read_text()
    ]
    assert not lost, f"owner edits lost by the update from {updated.scenario.baseline.version}:\n" + "\n".join(lost)


def test_update_leaves_no_conflicts_where_the_owner_touched_other_lines(updated: Updated) -> None:
    conflicted = [
        name
        for name, path in project_files(updated.project).items()
        if path.suffix == ".rej" or CONFLICT_MARKER.search(path.read_text(errors="replace"))
    ]
    expected = [name for name in conflicted if template_changes_touching_owner_lines(updated, name)]
    assert not expected, (
        f"the template now changes lines next to the simulated owner edits in {expected}: an owner who made "
        "them gets a conflict, which is copier working as documented. Move the simulated edit in "
        "tests/test_update_history.py to lines the template keeps, and say in CHANGELOG.md what owners must merge."
    )
    assert not conflicted, f"conflicts where only one side changed: {conflicted}\n{updated.output}"


def test_update_records_the_new_template_version(updated: Updated, history_template: Path) -> None:
    answers = updated.service.answers
    assert answers["_commit"] == HEAD_TAG
    assert answers["_src_path"] == str(history_template)
    assert f"template {HEAD_TAG}" in (updated.project / "README.md").read_text()


def test_update_gives_todays_files_except_where_the_owner_edited(updated: Updated) -> None:
    """Files the template renamed or removed are gone, new ones are there, untouched ones are today's."""
    ours, fresh = project_files(updated.project), project_files(updated.fresh)
    owner_added = {name for name in updated.owner_edits if name not in fresh}
    assert set(ours) - owner_added == set(fresh), (
        f"left over from {updated.scenario.baseline.version}: {sorted(set(ours) - owner_added - set(fresh))}; "
        f"missing: {sorted(set(fresh) - set(ours))} (a renamed or removed file needs a _migrations entry)"
    )
    differ = [
        name
        for name in fresh
        if name not in updated.owner_edits and ours[name].read_bytes() != fresh[name].read_bytes()
    ]
    assert not differ, f"differ from a fresh render although the owner never touched them: {differ}"


def test_update_keeps_uv_lock_true_to_the_merged_pyproject(updated: Updated) -> None:
    assert updated.output.count(AFTER_UPDATE_MESSAGE) == 1, updated.output
    checked = judges.run([uv_executable(), "lock", "--check"], updated.project, UV_ENV)
    judges.assert_passes(checked, "uv lock --check (what CI's UV_LOCKED enforces)")


# ---------------------------------------------------------------- the updated service's own gates
def test_updated_service_passes_ruff(updated: Updated) -> None:
    judges.assert_passes(run_tool(updated.service, "-m", "ruff", "check", "."), "ruff check")
    judges.assert_passes(run_tool(updated.service, "-m", "ruff", "format", "--check", "."), "ruff format --check")


def test_updated_service_passes_mypy_strict(updated: Updated) -> None:
    arguments = make_command(updated.project, "typecheck", "mypy")
    judges.assert_passes(run_tool(updated.service, "-m", "mypy", *arguments), "mypy")


def test_updated_service_passes_its_own_tests(updated: Updated) -> None:
    done = run_tool(updated.service, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider")
    judges.assert_passes(done, "the updated service's tests")
    assert "PASSED tests/unit/test_owner_rules.py::" in done.stdout, "the owner's own test did not run"


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
        replace_line(readme, lambda _: line, owner_line)
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
