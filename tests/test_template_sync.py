"""The rendered service's scripts/template_sync.py turns a newer template version into one pull request.

Everything is real except GitHub: a tagged template repository (v1.0.0, then a
change and a CHANGELOG.md entry tagged v1.1.0), a service rendered from v1.0.0
and edited by its owner, a bare repository as its `origin`, real git and real
copier. GitHub cannot be reached from here, so a recording `gh` stands first on
PATH: it answers `gh pr list` and `gh issue list` from what it was asked before and
keeps every call.

The workflow's two jobs are run as the workflow runs them: `--prepare` in the
service's clone, `--publish-from` in a fresh clone of origin's main. GitHub's refusal
of a GITHUB_TOKEN push that changes a workflow comes from a pre-receive hook in the
bare origin, with GitHub's message.
"""

from __future__ import annotations

import json
import os
import re
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
if args[:2] == ["pr", "list"] and "closed" in args:
    print((record / "closed.json").read_text() if (record / "closed.json").exists() else "[]")
elif args[:2] == ["pr", "list"]:
    print(json.dumps([{{"number": 7}}] if (record / "opened").exists() else []))
elif args[:2] == ["pr", "create"]:
    (record / "opened").touch()
    print("https://github.com/example/order-service/pull/7")
elif args[:2] == ["issue", "list"]:
    issue = record / "issue-title"
    print(json.dumps([{{"number": 9, "title": issue.read_text()}}] if issue.exists() else []))
elif args[:2] == ["issue", "create"]:
    (record / "issue-title").write_text(args[args.index("--title") + 1])
    print("https://github.com/example/order-service/issues/9")
"""
# GitHub's answer to a GITHUB_TOKEN push that changes a workflow, from a bare origin's hook.
REFUSING_HOOK = """#!/bin/sh
while read -r old new ref; do
  base="$old"
  [ "$base" = 0000000000000000000000000000000000000000 ] && base=refs/heads/main
  if git diff --name-only "$base" "$new" -- .github/workflows/ | grep -q .; then
    echo "refusing to allow a GitHub App to create or update workflow" \
      "\\`.github/workflows/ci.yml\\` without \\`workflows\\` permission" >&2
    exit 1
  fi
done
"""
MISSING_PIN = "template-sync-pin-nobody-has==1.0"
# What GitHub Actions sets in the publish job; a person's machine has neither.
IN_CI = {"GITHUB_ACTIONS": "true", "GITHUB_RUN_ID": "4242"}
ON_A_MACHINE: dict[str, str] = {}
SYNC_IDENTITY = {
    "GIT_COMMITTER_NAME": "github-actions[bot]",
    "GIT_COMMITTER_EMAIL": "41898282+github-actions[bot]@users.noreply.github.com",
}


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


def sync(project: Path, record: Path, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run the service's own script as the workflow does, with the recording gh first on PATH."""
    before = record / "calls.jsonl"
    seen = len(before.read_text().splitlines()) if before.exists() else 0
    environment = judges.clean_env(
        {
            "PATH": f"{record}{os.pathsep}{os.environ['PATH']}",
            "GH_RECORD": str(record),
            # What GitHub Actions sets; the body links the dispatched CI run with them.
            "GITHUB_SERVER_URL": "https://github.com",
            "GITHUB_REPOSITORY": "example/order-service",
            "UV": shutil.which("uv", path=str(Path(sys.executable).parent)) or "uv",
            **(env or {}),
        }
    )
    environment.pop("GITHUB_ACTIONS", None)
    environment.update(env or {})
    command = [sys.executable, "scripts/template_sync.py", "--copier", f"{sys.executable} -m copier", *args]
    done = judges.run(command, project, environment)
    calls = [json.loads(line) for line in before.read_text().splitlines()[seen:]] if before.exists() else []
    return {"exit": done.returncode, "output": done.stdout + done.stderr, "gh": calls}


def ci_sync(project: Path, origin: Path, record: Path, handoff: Path, **env: str) -> dict[str, Any]:
    """The workflow's two jobs: the update in `project`, the publishing in a fresh clone of origin's main."""
    prepared = sync(project, record, "--prepare", str(handoff), env=env)
    if prepared["exit"] != 0:
        return prepared
    return published_from(origin, record, handoff, prepared["output"])


def published_from(
    origin: Path, record: Path, handoff: Path, before: str = "", env: dict[str, str] | None = None
) -> dict[str, Any]:
    """`--publish-from` in a fresh clone of origin's main: in the publish job, or (`env`) on a machine."""
    checkout = handoff.parent / f"{handoff.name}-publish-checkout"
    shutil.rmtree(checkout, ignore_errors=True)
    git(origin.parent, "clone", "--quiet", "--branch", "main", str(origin), str(checkout))
    done = sync(checkout, record, "--publish-from", str(handoff), "--base", "main", env=IN_CI if env is None else env)
    return done | {"output": before + done["output"]}


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
    """Publish with the workflow's two jobs, then by hand (a refresh); refuse an owner's amended
    commit and an owner's commit on the branch; skip a closed pull request; then merge and run again."""
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

    # Rendered from a path: a runner cannot reach the template, and the update job says so first.
    local_source = sync(project, record, "--prepare", str(directory / "refused"), env={"GITHUB_ACTIONS": "true"})

    main_before = git(project, "rev-parse", "main").strip()
    handoff = directory / "handoff"
    first = ci_sync(project, origin, record, handoff)
    first |= {"commit": git(project, "rev-parse", BRANCH).strip(), "origin": git(origin, "rev-parse", BRANCH).strip()}
    first |= {"main": git(project, "rev-parse", "main").strip(), "status": git(project, "status", "--porcelain")}
    first |= {"checked_out": git(project, "branch", "--show-current").strip()}
    second = sync(project, record, "--publish")
    second |= {"origin": git(origin, "rev-parse", BRANCH).strip()}

    # Run on demand from another branch, in a shallow clone of that branch alone: main is fetched.
    git(project, "push", "--quiet", "origin", "main:refs/heads/feature")
    feature = directory / "feature-checkout"
    git(
        directory,
        "clone",
        "--quiet",
        "--depth",
        "1",
        "--single-branch",
        "--branch",
        "feature",
        f"file://{origin}",
        str(feature),
    )
    from_feature = sync(feature, record, "--prepare", str(directory / "handoff-feature"), "--base", "main")
    from_feature |= {"parent": git(feature, "rev-parse", f"{BRANCH}^").strip()}
    git(project, "push", "--quiet", "origin", ":refs/heads/feature")

    # main moves between the two jobs: the publishing job refuses the update built on the old main.
    mover = directory / "mover"
    git(directory, "clone", "--quiet", "--branch", "main", str(origin), str(mover))
    commit_all(mover, "Someone merges to main while the sync runs")
    git(mover, "push", "--quiet", "origin", "main")
    moved = published_from(origin, record, handoff)
    moved |= {"origin": git(origin, "rev-parse", BRANCH).strip()}
    git(mover, "push", "--quiet", "--force", "origin", f"{main_before}:refs/heads/main")

    # The owner amends the sync commit (a fix of their own in it) and force-pushes.
    owner_clone = directory / "owner-clone"
    git(directory, "clone", "--quiet", "--branch", BRANCH, str(origin), str(owner_clone))
    (owner_clone / "amended.txt").write_text("the owner's fix, folded into the sync commit\n")
    git(owner_clone, "add", "amended.txt")
    git(owner_clone, "commit", "--quiet", "--amend", "--no-edit")
    git(owner_clone, "push", "--quiet", "--force", "origin", BRANCH)
    amended_tip = git(origin, "rev-parse", BRANCH).strip()
    amended = sync(project, record, "--publish")
    amended |= {"origin": git(origin, "rev-parse", BRANCH).strip(), "owners_tip": amended_tip}

    # The owner resolves something on the branch and pushes: the next sync must not overwrite it.
    (owner_clone / "resolution.txt").write_text("resolved by the owner\n")
    commit_all(owner_clone, "Owner resolves the sync")
    git(owner_clone, "push", "--quiet", "origin", BRANCH)
    owners_tip = git(origin, "rev-parse", BRANCH).strip()
    guarded = sync(project, record, "--publish")
    guarded |= {"origin": git(origin, "rev-parse", BRANCH).strip(), "owners_tip": owners_tip}

    # The owner closes the pull request unmerged: that version is skipped.
    (record / "opened").unlink()
    closed_pr = [{"number": 7, "title": "Update the template from v1.0.0 to v1.1.0", "state": "CLOSED"}]
    (record / "closed.json").write_text(json.dumps(closed_pr))
    closed = ci_sync(project, origin, record, directory / "handoff-closed")
    closed |= {"origin": git(origin, "rev-parse", BRANCH).strip(), "owners_tip": owners_tip}
    (record / "closed.json").unlink()

    git(project, "merge", "--quiet", "--ff-only", first["commit"])
    refs_before = refs(project)
    merged = sync(project, record, "--publish")
    merged |= {"refs_before": refs_before, "refs_after": refs(project)}
    runs = {"first": first, "second": second, "from_feature": from_feature, "moved": moved, "amended": amended}
    runs |= {"guarded": guarded}
    return {
        "project": str(project),
        "stale": stale,
        "main_before": main_before,
        "runs": runs | {"closed": closed, "merged": merged, "local_source": local_source},
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
    assert "After update: uv.lock already matches pyproject.toml" in created["body"]
    assert "`uv lock --check` passed after the update" in created["body"]


def test_the_publishing_job_pushes_the_very_commit_the_update_job_built(first: dict[str, Any]) -> None:
    # The publishing job pushed exactly the commit the update job built: nothing re-run there.
    assert first["origin"] == first["commit"]
    assert "The update is in" in first["output"]
    assert "Publishing Update the template from v1.0.0 to v1.1.0" in first["output"]


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


@pytest.mark.parametrize("run", ["amended", "guarded"])
def test_sync_leaves_a_branch_the_owner_pushed_to_alone(published: dict[str, Any], run: str) -> None:
    # "amended": the owner folded a fix into the sync commit; "guarded": a commit on top of it.
    guarded = published["runs"][run]
    assert guarded["exit"] == 1
    assert "not the sync's own" in guarded["output"]
    assert guarded["origin"] == guarded["owners_tip"]
    assert not gh_calls(guarded, "pr", "create")
    assert not gh_calls(guarded, "pr", "edit")
    assert not gh_calls(guarded, "workflow", "run")


def test_a_run_dispatched_from_another_branch_builds_on_the_default_branch(published: dict[str, Any]) -> None:
    from_feature = published["runs"]["from_feature"]
    assert from_feature["exit"] == 0, from_feature["output"]
    assert from_feature["parent"] == published["main_before"]
    assert from_feature["gh"] == []


def test_the_publishing_job_refuses_an_update_built_on_an_older_default_branch(published: dict[str, Any]) -> None:
    moved = published["runs"]["moved"]
    assert moved["exit"] == 1
    assert "main moved while the update ran" in moved["output"]
    assert moved["origin"] == published["runs"]["first"]["origin"]
    assert not gh_calls(moved, "pr")
    assert not gh_calls(moved, "workflow")


def test_closing_the_pull_request_skips_that_version(published: dict[str, Any]) -> None:
    closed = published["runs"]["closed"]
    assert closed["exit"] == 0, closed["output"]
    assert "#7 for v1.1.0 was closed without merging: this version is skipped" in closed["output"]
    assert closed["origin"] == closed["owners_tip"]
    assert not gh_calls(closed, "pr", "create")
    assert not gh_calls(closed, "pr", "edit")
    assert not gh_calls(closed, "workflow", "run")


def test_a_service_rendered_from_a_path_is_told_to_point_at_the_template_repository(
    published: dict[str, Any],
) -> None:
    refused = published["runs"]["local_source"]
    assert refused["exit"] == 1
    assert "edit `_src_path` in .copier-answers.yml to gh:<org>/<template>" in refused["output"]
    assert refused["gh"] == []


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


# ---------------------------------------------------------------- scenario: GitHub refuses the push
def build_refused(rendered: dict[str, Any], directory: Path) -> dict[str, Any]:
    """v1.2.0 changes CI's workflow and adds a pin nobody can lock offline; origin refuses workflow changes."""
    template = directory / "template"
    shutil.copytree(rendered["template"], template, symlinks=True)
    ci = template / "template" / ".github" / "workflows" / "ci.yml.jinja"
    ci.write_text(ci.read_text() + "# Template v1.2.0 changed this workflow.\n")
    pyproject = template / "template" / "pyproject.toml.jinja"
    text = pyproject.read_text()
    assert "dependencies = [\n" in text, "pyproject.toml's dependencies moved: update the test"
    pyproject.write_text(text.replace("dependencies = [\n", f'dependencies = [\n    "{MISSING_PIN}",\n', 1))
    commit_all(template, "Template v1.2.0")
    git(template, "tag", "v1.2.0")

    project = owners_copy(rendered, directory / "order-service")
    answers = project / ".copier-answers.yml"
    answers.write_text(answers.read_text().replace(rendered["template"], str(template)))
    commit_all(project, "Owner points the service at the template's new home")
    origin = directory / "origin.git"
    git(directory, "init", "--quiet", "--bare", str(origin))
    git(project, "remote", "add", "origin", str(origin))
    git(project, "push", "--quiet", "origin", "main")
    hook = origin / "hooks" / "pre-receive"
    hook.write_text(REFUSING_HOOK)
    hook.chmod(0o755)
    record = recording_gh(directory / "gh")
    handoff = directory / "handoff"
    first = ci_sync(project, origin, record, handoff, UV_OFFLINE="1")
    again = published_from(origin, record, handoff)
    branches = git(origin, "for-each-ref", "--format=%(refname)", "refs/heads/").split()
    # The owner runs the issue's command: first with a login GitHub refuses too, then with one it takes.
    still_refused = published_from(origin, record, handoff, env=ON_A_MACHINE)
    hook.unlink()
    by_hand = published_from(origin, record, handoff, env=ON_A_MACHINE)
    by_hand |= {"origin": git(origin, "rev-parse", BRANCH).strip()}
    return {"first": first, "again": again, "branches": branches, "still_refused": still_refused, "by_hand": by_hand}


@pytest.fixture
def refused(shared: Path, rendered: dict[str, Any]) -> dict[str, Any]:
    done = once(shared, "sync-refused", lambda directory: build_refused(rendered, directory))
    assert done["first"]["exit"] == 0, done["first"]["output"]
    return done


def test_a_refused_workflow_push_opens_one_issue_with_the_command_to_run_and_passes(
    refused: dict[str, Any],
) -> None:
    first = refused["first"]
    assert "GitHub refused the push" in first["output"]
    assert refused["branches"] == ["refs/heads/main"]
    [issue] = gh_calls(first, "issue", "create")
    title = issue["args"][issue["args"].index("--title") + 1]
    assert "v1.0.0 to v1.2.0" in title
    command = issue["body"].split("```\n", 2)[1]  # the first code block: the issue's own text
    assert "gh auth refresh --scopes workflow" in command
    assert 'gh run download 4242 -n template-sync -D "$dir"' in command
    assert 'python3 scripts/template_sync.py --publish-from "$dir" --base main' in command
    # Not a local `copier update --trust` (the template's code) beside a token that may push workflows.
    assert "python3 scripts/template_sync.py --publish\n" not in issue["body"]
    assert "runs the template's own code (`copier update --trust`) with your credentials" in issue["body"]
    assert "7 days" in issue["body"]
    # The pull request's body comes after the commands, apart from them.
    assert issue["body"].index(command) < issue["body"].index("## What changed in the template")
    assert not gh_calls(first, "pr", "create")
    assert not gh_calls(first, "workflow", "run")


def test_the_issues_command_publishes_the_bundle_from_a_machine_without_dispatching_ci(
    refused: dict[str, Any],
) -> None:
    still_refused, by_hand = refused["still_refused"], refused["by_hand"]
    # A login without the workflow scope: told what to do, and no issue opened from a machine.
    assert still_refused["exit"] == 1
    assert "gh auth refresh --scopes workflow" in still_refused["output"]
    assert not gh_calls(still_refused, "issue")
    # Then the push goes through: the very commit CI built, a pull request, and CI left to the push.
    assert by_hand["exit"] == 0, by_hand["output"]
    assert by_hand["origin"] in by_hand["output"]
    [created] = gh_calls(by_hand, "pr", "create")
    assert "v1.0.0 to v1.2.0" in created["args"][created["args"].index("--title") + 1]
    assert not gh_calls(by_hand, "workflow", "run"), "a dispatch would cancel the run the push started"


def test_the_next_refused_run_refreshes_the_same_issue(refused: dict[str, Any]) -> None:
    again = refused["again"]
    assert again["exit"] == 0, again["output"]
    assert not gh_calls(again, "issue", "create")
    [edited] = gh_calls(again, "issue", "edit")
    assert edited["args"][:3] == ["issue", "edit", "9"]


def test_a_lock_the_update_could_not_refresh_is_called_out_like_a_conflict(refused: dict[str, Any]) -> None:
    [issue] = gh_calls(refused["first"], "issue", "create")
    body = issue["body"]
    assert "After update: `uv lock` failed" in body
    conflicts = body.split("## Conflicts", 1)[1].split("## After the update", 1)[0]
    assert "`uv.lock` does not match `pyproject.toml`: run `uv lock` and commit it" in conflicts
    assert "`uv lock --check` passed" not in body


# ---------------------------------------------------------------- scenario: a handoff that lies
MARKED = "<<<<<<< before updating\nthe owner's line\n=======\nthe template's line\n>>>>>>> after updating\n"
LYING_EXCERPT = "None: copier merged every template change with your edits."


def handoff_of(project: Path, directory: Path, *refs_in_bundle: str, lying: bool = True) -> Path:
    """What the update job hands over, written here: a bundle of `refs_in_bundle` on top of main."""
    directory.mkdir()
    git(project, "bundle", "create", "--quiet", str(directory / "update.bundle"), *refs_in_bundle, "^main")
    commit = git(project, "rev-parse", BRANCH).strip()
    metadata = {"base": git(project, "rev-parse", "main").strip(), "commit": commit, "lock_stale": False}
    metadata |= {"after_update": "After update: nothing to do", "conflicts": [] if lying else ["README.md"]}
    (directory / "metadata.json").write_text(json.dumps(metadata))
    (directory / "changelog.md").write_text(LYING_EXCERPT)
    return directory


def build_lying(rendered: dict[str, Any], directory: Path) -> dict[str, Any]:
    """A sync commit with conflict markers and a .rej file, handed over as if it had none."""
    project = owners_copy(rendered, directory / "order-service")
    origin = directory / "origin.git"
    git(directory, "init", "--quiet", "--bare", str(origin))
    git(project, "remote", "add", "origin", str(origin))
    git(project, "push", "--quiet", "origin", "main")
    git(project, "checkout", "--quiet", "-b", BRANCH)
    readme = project / "README.md"
    readme.write_text(MARKED + readme.read_text())
    (project / "template.yaml.rej").write_text("a hunk copier could not place\n")
    answers = project / ".copier-answers.yml"
    answers.write_text(re.sub(r"(?m)^_commit: .*$", "_commit: v1.1.0", answers.read_text()))
    git(project, "add", "--all")
    message = "Update the template from v1.0.0 to v1.1.0"
    commit = ["git", "commit", "--quiet", "--no-verify", "-m", message]
    committed = judges.run(commit, project, judges.clean_env(SYNC_IDENTITY))
    judges.assert_passes(committed, "git commit")
    git(project, "branch", "extra", "HEAD")
    record = recording_gh(directory / "gh")
    runs: dict[str, Any] = {}
    # Refused before anything reaches GitHub: a file too many, a symlink, a bundle with another ref.
    extra_file = handoff_of(project, directory / "extra-file", f"refs/heads/{BRANCH}")
    (extra_file / "notes.txt").write_text("not the update's\n")
    runs["extra_file"] = published_from(origin, record, extra_file)
    symlinked = handoff_of(project, directory / "symlinked", f"refs/heads/{BRANCH}")
    (symlinked / "changelog.md").unlink()
    (symlinked / "changelog.md").symlink_to(readme)
    runs["symlinked"] = published_from(origin, record, symlinked)
    runs["extra_ref"] = published_from(
        origin, record, handoff_of(project, directory / "extra-ref", f"refs/heads/{BRANCH}", "refs/heads/extra")
    )
    # The branch's ref names an annotated tag of the commit, not the commit: a bundle written by hand.
    git(project, "tag", "--annotate", "--message", "not a commit", "wrapped", BRANCH)
    wrapped = handoff_of(project, directory / "wrapped", f"refs/heads/{BRANCH}")
    git(project, "bundle", "create", "--quiet", str(directory / "tag.bundle"), "refs/tags/wrapped", "^main")
    crafted = (directory / "tag.bundle").read_bytes()
    crafted = crafted.replace(b" refs/tags/wrapped\n", f" refs/heads/{BRANCH}\n".encode(), 1)
    (wrapped / "update.bundle").write_bytes(crafted)
    runs["wrapped"] = published_from(origin, record, wrapped)
    runs["lying"] = published_from(origin, record, handoff_of(project, directory / "lying", f"refs/heads/{BRANCH}"))
    return runs | {"branches": git(origin, "for-each-ref", "--format=%(refname)", "refs/heads/").split()}


@pytest.fixture
def lying(shared: Path, rendered: dict[str, Any]) -> dict[str, Any]:
    return once(shared, "sync-lying", lambda directory: build_lying(rendered, directory))


def test_the_conflicts_in_the_body_come_from_the_commit_not_from_the_update_jobs_word(lying: dict[str, Any]) -> None:
    run = lying["lying"]
    assert run["exit"] == 0, run["output"]
    [created] = gh_calls(run, "pr", "create")
    conflicts = created["body"].split("## Conflicts", 1)[1].split("## After the update", 1)[0]
    assert "- `README.md`" in conflicts
    assert "- `template.yaml.rej`" in conflicts
    assert LYING_EXCERPT not in conflicts
    # What only the update job can tell is labelled as its report.
    assert "## What changed in the template (as the update job reported it)" in created["body"]
    assert "## After the update (as the update job reported it)" in created["body"]


@pytest.mark.parametrize(
    ("run", "message"),
    [
        ("extra_file", "alone, not ['changelog.md', 'metadata.json', 'notes.txt', 'update.bundle']"),
        ("symlinked", "changelog.md as something other than a regular file"),
        ("extra_ref", "must hold refs/heads/template-sync alone"),
        ("wrapped", "which is not a commit"),
    ],
)
def test_the_publishing_job_refuses_a_handoff_that_is_not_exactly_the_update(
    lying: dict[str, Any], run: str, message: str
) -> None:
    refused = lying[run]
    assert refused["exit"] == 1
    assert message in refused["output"]
    assert refused["gh"] == []


# ---------------------------------------------------------------- the workflow that runs it
def test_the_workflow_runs_the_script_weekly_and_ci_accepts_its_dispatch(rendered: dict[str, Any]) -> None:
    workflows = Path(rendered["service"]) / ".github" / "workflows"
    sync_workflow = yaml.safe_load((workflows / "template-sync.yml").read_text())
    triggers = sync_workflow[True]  # YAML 1.1 reads the key `on` as True
    assert "workflow_dispatch" in triggers
    [schedule] = triggers["schedule"]
    assert schedule["cron"].split()[4] not in ("*", ""), "not weekly"
    publish = sync_workflow["jobs"]["publish"]
    assert publish["permissions"]["actions"] == "write", "the script dispatches CI"
    [command] = [step["run"] for step in sync_workflow["jobs"]["update"]["steps"] if "--prepare" in step.get("run", "")]
    assert "copier==9.19.1" in command
    ci = yaml.safe_load((workflows / "ci.yml").read_text())
    assert "workflow_dispatch" in ci[True], "gh workflow run ci.yml fails on a workflow without this trigger"
    [upload] = [step for step in sync_workflow["jobs"]["update"]["steps"] if "upload-artifact" in step.get("uses", "")]
    assert upload["with"]["retention-days"] == 7, "a refused push's issue promises the artifact for a week"


def test_ci_keeps_no_uv_cache_that_the_template_sync_could_fill(rendered: dict[str, Any]) -> None:
    # CI runs on the sync's branch, i.e. the template's new code: a cache it saved would be
    # restored in the default branch's runs. deploy.yml has none either.
    ci = yaml.safe_load((Path(rendered["service"]) / ".github" / "workflows" / "ci.yml").read_text())
    setup_uv = [step for job in ci["jobs"].values() for step in job["steps"] if "setup-uv" in step.get("uses", "")]
    assert setup_uv
    for step in setup_uv:
        assert step.get("with", {}).get("enable-cache") is False, step


def test_the_template_code_runs_in_a_job_that_can_only_read(rendered: dict[str, Any]) -> None:
    workflows = Path(rendered["service"]) / ".github" / "workflows"
    sync_workflow = yaml.safe_load((workflows / "template-sync.yml").read_text())
    update, publish = sync_workflow["jobs"]["update"], sync_workflow["jobs"]["publish"]
    assert update["permissions"] == {"contents": "read"}
    assert "token" not in json.dumps(update).lower()
    assert "token" not in json.dumps(sync_workflow.get("env", {})).lower()
    assert publish["needs"] == "update"
    assert publish["permissions"]["issues"] == "write", "a refused push opens an issue"
    # The publishing job runs the default branch's script on what it downloaded, and no copier.
    uses = [step.get("uses", "") for step in publish["steps"]]
    assert not any("setup-uv" in action for action in uses)
    [command] = [step["run"] for step in publish["steps"] if "run" in step]
    assert "--publish-from" in command
    assert "copier" not in command
    checkout = next(step for step in publish["steps"] if step.get("uses", "").startswith("actions/checkout@"))
    assert checkout["with"]["ref"] == "${{ env.BASE_BRANCH }}"
    assert sync_workflow["env"]["BASE_BRANCH"] == "${{ github.event.repository.default_branch || github.ref_name }}"
    for job in (update, publish):
        for step in job["steps"]:
            if "uses" in step:
                assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", step["uses"]), step["uses"]
