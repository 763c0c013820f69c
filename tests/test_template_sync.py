"""The rendered service's scripts/template_sync.py turns a newer template version into one pull request.

Everything is real except GitHub: a tagged template repository (v1.0.0, then a
change and a CHANGELOG.md entry tagged v1.1.0), a service rendered from v1.0.0
and edited by its owner, a bare repository as its `origin`, real git and real
copier. GitHub cannot be reached from here, so a recording `gh` stands first on
PATH: it answers `gh pr list` from what it was asked before and keeps every call.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

import judges
from once import once
from template_repo import commit_all, copier, git, snapshot_repo

BRANCH = "template-sync"
TEMPLATE_HEADING = "# {{ project_name }}\n"
TEMPLATE_CHANGE = "Template v1.1.0 appended this line."
OWNER_RULE = '''

def owner_added_rule(total: int) -> bool:
    """Added by the owner after the copy."""
    return total > 0
'''
OWNER_HEADING = "# Order Service, run by the payments team\n"
CHANGELOG = """# Changelog

## [Unreleased]

- Not released: must stay out of the pull request.

## [1.1.0] - 2026-12-01

### Changed
- The service README ends with a line from v1.1.0.

## [1.0.0] - 2026-11-01

### Added
- The first release: must stay out of the pull request.

[1.1.0]: https://example.com/copier-lambda-service/compare/v1.0.0...v1.1.0
"""
RECORDING_GH = """#!{python}
import json, os, sys
from pathlib import Path

record = Path(os.environ["GH_RECORD"])
args = sys.argv[1:]
call = {{"args": args}}
if "--body-file" in args:
    call["body"] = Path(args[args.index("--body-file") + 1]).read_text()
with (record / "calls.jsonl").open("a") as calls:
    calls.write(json.dumps(call) + "\\n")
if args[:2] == ["pr", "list"]:
    print(json.dumps([{{"number": 7}}] if (record / "opened").exists() else []))
elif args[:2] == ["pr", "create"]:
    (record / "opened").touch()
    print("https://github.com/example/order-service/pull/7")
"""


# ---------------------------------------------------------------- what the scenarios share
def build_template_and_service(directory: Path) -> dict[str, Any]:
    """The template tagged v1.0.0, a service rendered from it and committed, then v1.1.0 tagged."""
    template = snapshot_repo(directory / "template", "v1.0.0")
    service = directory / "order-service"
    copier(directory, "copy", "--trust", "--defaults", "--vcs-ref", "v1.0.0", str(template), str(service))
    commit_all(service, "Service rendered from template v1.0.0")

    readme = template / "template" / "README.md.jinja"
    text = readme.read_text()
    assert TEMPLATE_HEADING in text, "the README's heading moved: update the test's conflicting line"
    readme.write_text(text.replace(TEMPLATE_HEADING, "# {{ project_name }} service\n", 1) + f"\n{TEMPLATE_CHANGE}\n")
    (template / "CHANGELOG.md").write_text(CHANGELOG)
    commit_all(template, "Template v1.1.0")
    git(template, "tag", "v1.1.0")
    return {"template": str(template), "service": str(service)}


@pytest.fixture
def rendered(shared: Path) -> dict[str, Any]:
    return once(shared, "sync-rendered", build_template_and_service)


def owners_copy(rendered: dict[str, Any], project: Path) -> Path:
    """The rendered service, as its owner keeps it: a business rule added and committed."""
    shutil.copytree(rendered["service"], project, symlinks=True)
    logic = next((project / "src").glob("*/logic.py"))
    logic.write_text(logic.read_text() + OWNER_RULE)
    commit_all(project, "Owner adds a business rule")
    return project


def sync(project: Path, record: Path, *args: str) -> dict[str, Any]:
    """Run the service's own script as the workflow does, with the recording gh first on PATH."""
    before = record / "calls.jsonl"
    seen = len(before.read_text().splitlines()) if before.exists() else 0
    env = judges.clean_env(
        {
            "PATH": f"{record}{os.pathsep}{os.environ['PATH']}",
            "GH_RECORD": str(record),
            # What GitHub Actions sets; the body links the dispatched CI run with them.
            "GITHUB_SERVER_URL": "https://github.com",
            "GITHUB_REPOSITORY": "example/order-service",
        }
    )
    command = [sys.executable, "scripts/template_sync.py", "--copier", f"{sys.executable} -m copier", *args]
    done = judges.run(command, project, env)
    calls = [json.loads(line) for line in before.read_text().splitlines()[seen:]] if before.exists() else []
    return {"exit": done.returncode, "output": done.stdout + done.stderr, "gh": calls}


def recording_gh(record: Path) -> Path:
    record.mkdir(parents=True)
    gh = record / "gh"
    gh.write_text(RECORDING_GH.format(python=sys.executable))
    gh.chmod(0o755)
    return record


def refs(repo: Path) -> str:
    return git(repo, "for-each-ref", "--format=%(refname) %(objectname)")


# ---------------------------------------------------------------- scenario: published, then up to date
def build_published(rendered: dict[str, Any], directory: Path) -> dict[str, Any]:
    """Publish twice (open, then refresh), refuse an owner's commit on the branch, then merge and run again."""
    project = owners_copy(rendered, directory / "order-service")
    origin = directory / "origin.git"
    git(directory, "init", "--quiet", "--bare", str(origin))
    git(project, "remote", "add", "origin", str(origin))
    git(project, "push", "--quiet", "origin", "main")
    # A branch left from an earlier sync, now stale: the run must rebuild it from main.
    git(project, "checkout", "--quiet", "-b", BRANCH, "HEAD~1")
    (project / "stale.txt").write_text("from an earlier sync\n")
    commit_all(project, "Stale sync")
    git(project, "checkout", "--quiet", "main")
    stale = git(project, "rev-parse", BRANCH).strip()
    record = recording_gh(directory / "gh")

    main_before = git(project, "rev-parse", "main").strip()
    first = sync(project, record, "--publish")
    first |= {"commit": git(project, "rev-parse", BRANCH).strip(), "origin": git(origin, "rev-parse", BRANCH).strip()}
    first |= {"main": git(project, "rev-parse", "main").strip(), "status": git(project, "status", "--porcelain")}
    first |= {"checked_out": git(project, "branch", "--show-current").strip()}
    second = sync(project, record, "--publish")
    second |= {"origin": git(origin, "rev-parse", BRANCH).strip()}

    # The owner resolves something on the branch and pushes: the next sync must not overwrite it.
    owner_clone = directory / "owner-clone"
    git(directory, "clone", "--quiet", "--branch", BRANCH, str(origin), str(owner_clone))
    (owner_clone / "resolution.txt").write_text("resolved by the owner\n")
    commit_all(owner_clone, "Owner resolves the sync")
    git(owner_clone, "push", "--quiet", "origin", BRANCH)
    owners_tip = git(origin, "rev-parse", BRANCH).strip()
    guarded = sync(project, record, "--publish")
    guarded |= {"origin": git(origin, "rev-parse", BRANCH).strip(), "owners_tip": owners_tip}

    git(project, "merge", "--quiet", "--ff-only", first["commit"])
    refs_before = refs(project)
    merged = sync(project, record, "--publish")
    merged |= {"refs_before": refs_before, "refs_after": refs(project)}
    return {
        "project": str(project),
        "stale": stale,
        "main_before": main_before,
        "runs": {"first": first, "second": second, "guarded": guarded, "merged": merged},
    }


@pytest.fixture
def published(shared: Path, rendered: dict[str, Any]) -> dict[str, Any]:
    return once(shared, "sync-published", lambda directory: build_published(rendered, directory))


@pytest.fixture
def first(published: dict[str, Any]) -> dict[str, Any]:
    run: dict[str, Any] = published["runs"]["first"]
    assert run["exit"] == 0, run["output"]
    return run


def gh_calls(run: dict[str, Any], *command: str) -> list[dict[str, Any]]:
    return [call for call in run["gh"] if call["args"][: len(command)] == list(command)]


def answers_at(project: Path, revision: str) -> dict[str, Any]:
    loaded = yaml.safe_load(git(project, "show", f"{revision}:.copier-answers.yml"))
    assert isinstance(loaded, dict)
    return loaded


def test_sync_commits_the_update_on_its_branch_on_top_of_the_default_branch(
    published: dict[str, Any], first: dict[str, Any]
) -> None:
    project = Path(published["project"])
    assert git(project, "log", "-1", "--format=%s", first["commit"]).strip() == (
        "Update the template from v1.0.0 to v1.1.0"
    )
    assert git(project, "rev-parse", f"{first['commit']}^").strip() == published["main_before"]


def test_sync_rebuilds_a_stale_branch_from_the_default_branch(published: dict[str, Any], first: dict[str, Any]) -> None:
    project = Path(published["project"])
    ancestors = git(project, "rev-list", first["commit"]).split()
    assert published["stale"] not in ancestors
    assert "stale.txt" not in git(project, "ls-tree", "-r", "--name-only", first["commit"]).split()


def test_sync_commit_records_the_new_template_version(published: dict[str, Any], first: dict[str, Any]) -> None:
    assert answers_at(Path(published["project"]), first["commit"])["_commit"] == "v1.1.0"


def test_sync_commit_brings_the_template_change_and_keeps_the_owners_edit(
    published: dict[str, Any], first: dict[str, Any]
) -> None:
    project = Path(published["project"])
    assert TEMPLATE_CHANGE in git(project, "show", f"{first['commit']}:README.md")
    logic = next(name for name in git(project, "ls-files", "src").split() if name.endswith("/logic.py"))
    assert OWNER_RULE.strip() in git(project, "show", f"{first['commit']}:{logic}")


def test_sync_leaves_the_default_branch_and_the_work_tree_as_they_were(
    published: dict[str, Any], first: dict[str, Any]
) -> None:
    assert first["main"] == published["main_before"]
    assert first["checked_out"] == "main"
    assert first["status"] == ""


def test_publish_pushes_the_branch_opens_one_pull_request_and_dispatches_ci(first: dict[str, Any]) -> None:
    assert first["origin"] == first["commit"]
    [created] = gh_calls(first, "pr", "create")
    assert created["args"][created["args"].index("--base") + 1] == "main"
    assert created["args"][created["args"].index("--head") + 1] == BRANCH
    assert created["args"][created["args"].index("--title") + 1] == "Update the template from v1.0.0 to v1.1.0"
    assert not gh_calls(first, "pr", "edit")
    assert gh_calls(first, "workflow", "run") == [{"args": ["workflow", "run", "ci.yml", "--ref", BRANCH]}]


def test_pull_request_body_has_the_changelog_of_the_new_version_only(first: dict[str, Any]) -> None:
    [created] = gh_calls(first, "pr", "create")
    body = created["body"]
    assert "## [1.1.0] - 2026-12-01" in body
    assert "The service README ends with a line from v1.1.0." in body
    assert "must stay out of the pull request" not in body
    assert "https://example.com/copier-lambda-service" not in body  # link references are not prose


def test_pull_request_body_links_the_dispatched_ci_runs(first: dict[str, Any]) -> None:
    # The dispatched run is not among the pull request's checks: the body is where it is found.
    [created] = gh_calls(first, "pr", "create")
    runs = "https://github.com/example/order-service/actions/workflows/ci.yml?query=branch%3Atemplate-sync"
    assert runs in created["body"]


def test_a_clean_update_says_there_is_nothing_to_resolve(first: dict[str, Any]) -> None:
    [created] = gh_calls(first, "pr", "create")
    assert "None: copier merged every template change with your edits." in created["body"]


def test_second_publish_refreshes_the_pull_request_instead_of_opening_another(published: dict[str, Any]) -> None:
    second = published["runs"]["second"]
    assert second["exit"] == 0, second["output"]
    assert not gh_calls(second, "pr", "create")
    [edited] = gh_calls(second, "pr", "edit")
    assert edited["args"][:3] == ["pr", "edit", "7"]
    assert "## [1.1.0] - 2026-12-01" in edited["body"]
    # The same update again: origin keeps its commit and CI is not run twice on it.
    assert second["origin"] == published["runs"]["first"]["origin"]
    assert not gh_calls(second, "workflow", "run")


def test_sync_leaves_a_branch_the_owner_pushed_to_alone(published: dict[str, Any]) -> None:
    guarded = published["runs"]["guarded"]
    assert guarded["exit"] == 1
    assert "not the sync's own" in guarded["output"]
    assert guarded["origin"] == guarded["owners_tip"]
    assert not gh_calls(guarded, "pr", "create")
    assert not gh_calls(guarded, "workflow", "run")


def test_sync_does_nothing_once_the_update_is_merged(published: dict[str, Any]) -> None:
    merged = published["runs"]["merged"]
    assert merged["exit"] == 0, merged["output"]
    assert "up to date" in merged["output"]
    assert merged["gh"] == []
    assert merged["refs_after"] == merged["refs_before"]


# ---------------------------------------------------------------- scenario: a conflicting owner edit
def build_conflicted(rendered: dict[str, Any], directory: Path) -> dict[str, Any]:
    project = owners_copy(rendered, directory / "order-service")
    readme = project / "README.md"
    readme.write_text(readme.read_text().replace("# Order Service\n", OWNER_HEADING, 1))
    commit_all(project, "Owner renames the README's heading")
    done = sync(project, recording_gh(directory / "gh"))
    return done | {"project": str(project), "commit": git(project, "rev-parse", BRANCH).strip()}


@pytest.fixture
def conflicted(shared: Path, rendered: dict[str, Any]) -> dict[str, Any]:
    done = once(shared, "sync-conflicted", lambda directory: build_conflicted(rendered, directory))
    assert done["exit"] == 0, done["output"]
    return done


def test_a_conflicted_update_is_still_committed_with_its_markers(conflicted: dict[str, Any]) -> None:
    readme = git(Path(conflicted["project"]), "show", f"{conflicted['commit']}:README.md")
    assert f"<<<<<<< before updating\n{OWNER_HEADING}=======\n# Order Service service\n>>>>>>> after updating" in (
        readme
    )
    assert TEMPLATE_CHANGE in readme  # the rest of the update is there


def test_a_conflicting_owner_edit_is_listed_in_the_body(conflicted: dict[str, Any]) -> None:
    body = conflicted["output"].split("## Conflicts", 1)[1].split("## Before merging", 1)[0]
    assert "- `README.md`" in body
    assert "<<<<<<< before updating" in body  # and how to find what to resolve
    assert "logic.py" not in body


def test_without_publish_nothing_reaches_github(conflicted: dict[str, Any]) -> None:
    assert conflicted["gh"] == []


# ---------------------------------------------------------------- the workflow that runs it
def test_the_workflow_runs_the_script_weekly_and_ci_accepts_its_dispatch(rendered: dict[str, Any]) -> None:
    workflows = Path(rendered["service"]) / ".github" / "workflows"
    sync_workflow = yaml.safe_load((workflows / "template-sync.yml").read_text())
    triggers = sync_workflow[True]  # YAML 1.1 reads the key `on` as True
    assert "workflow_dispatch" in triggers
    [schedule] = triggers["schedule"]
    assert schedule["cron"].split()[4] not in ("*", ""), "not weekly"
    [job] = sync_workflow["jobs"].values()
    assert job["permissions"]["actions"] == "write", "the script dispatches CI"
    [command] = [step["run"] for step in job["steps"] if "template_sync.py" in step.get("run", "")]
    assert "--publish" in command
    assert "copier==9.19.1" in command
    ci = yaml.safe_load((workflows / "ci.yml").read_text())
    assert "workflow_dispatch" in ci[True], "gh workflow run ci.yml fails on a workflow without this trigger"
