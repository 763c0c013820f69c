"""Bring the newest version of this service's template in as one pull request.

.github/workflows/template-sync.yml runs it weekly with --publish. Run by hand, without
--publish, it only builds the local branch and prints the pull request's body:

    python scripts/template_sync.py                # is there a newer template? build the branch
    python scripts/template_sync.py --publish      # push it and open (or refresh) the pull request

It reads `.copier-answers.yml`, asks copier whether a newer template version is out,
and if so rebuilds one branch from the default branch, runs `copier update` on it and
commits the result, conflicts included: a conflicted update is still worth a pull
request, with the conflicted files named in its body.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ANSWERS_FILE = ".copier-answers.yml"
# The copier the template's README pins; uvx runs it without installing anything.
DEFAULT_COPIER = "uvx --from copier==9.19.1 copier"
DEFAULT_BRANCH = "template-sync"
CI_WORKFLOW = "ci.yml"
SUBJECT_PREFIX = "Update the template from "
CONFLICT_MARKER = re.compile(r"^<<<<<<< before updating", re.MULTILINE)
VERSION = re.compile(r"^v?(\d+(?:\.\d+)*)")
CHANGELOG_HEADING = re.compile(r"^## \[(?P<name>[^\]]+)\]", re.MULTILINE)
LINK_REFERENCE = re.compile(r"^\[[^\]]+\]: \S+$", re.MULTILINE)
# GitHub refuses a pull request body over 65,536 characters.
MAX_BODY_CHARACTERS = 60_000


class SyncError(Exception):
    """A step failed in a way the owner must act on; the message says how."""


@dataclass(frozen=True)
class Answers:
    commit: str
    src_path: str


@dataclass(frozen=True)
class Update:
    from_version: str
    to_version: str
    conflicts: list[str]
    commit: str


def run(command: Sequence[str], cwd: Path) -> str:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)  # noqa: S603 - our own commands
    if done.returncode != 0:
        raise SyncError(f"`{shlex.join(command)}` failed (exit {done.returncode}):\n{done.stdout}{done.stderr}")
    return done.stdout


def git(project: Path, *args: str) -> str:
    return run(["git", *args], project).strip()


def read_answers(project: Path) -> Answers:
    """`_commit` and `_src_path` of the answers file (plain `key: value` lines, as copier writes them)."""
    values: dict[str, str] = {}
    for line in (project / ANSWERS_FILE).read_text(encoding="utf-8").splitlines():
        key, separator, value = line.partition(":")
        if separator and key in ("_commit", "_src_path"):
            values[key] = value.strip().strip("'\"")
    missing = {"_commit", "_src_path"} - values.keys()
    if missing:
        raise SyncError(f"{ANSWERS_FILE} has no {', '.join(sorted(missing))}: copier cannot update this service")
    return Answers(commit=values["_commit"], src_path=values["_src_path"])


def newer_version(copier: Sequence[str], project: Path) -> str | None:
    """The template's latest version if it is newer than the one this service was rendered from."""
    report = json.loads(run([*copier, "check-update", "--output-format", "json"], project))
    return str(report["latest_version"]) if report["update_available"] else None


def require_clean(project: Path) -> None:
    # copier update refuses a dirty tree too, but later and less clearly.
    if git(project, "status", "--porcelain"):
        raise SyncError("the working tree has uncommitted changes: commit or stash them first")


def current_branch(project: Path) -> str:
    branch = git(project, "branch", "--show-current")
    if not branch:
        raise SyncError("HEAD is detached: check out the default branch or pass --base")
    return branch


def conflicted_files(project: Path) -> list[str]:
    """Files copier could not merge: inline markers (left unmerged in the index) and any .rej files."""
    unmerged = git(project, "diff", "--name-only", "--diff-filter=U").splitlines()
    rejected = git(project, "ls-files", "--others", "--exclude-standard", "*.rej").splitlines()
    marked = [
        name
        for name in git(project, "ls-files", "--modified").splitlines()
        if (project / name).is_file() and CONFLICT_MARKER.search((project / name).read_text(errors="replace"))
    ]
    return sorted(set(unmerged) | set(rejected) | set(marked))


def commit_message(from_version: str, to_version: str, conflicts: Sequence[str]) -> str:
    lines = [f"{SUBJECT_PREFIX}{from_version} to {to_version}", "", "copier update --trust --defaults."]
    if conflicts:
        lines += ["", "Committed with conflicts left for review:", *(f"- {name}" for name in conflicts)]
    return "\n".join(lines) + "\n"


def update_on_branch(copier: Sequence[str], project: Path, base: str, branch: str) -> Update:
    """(Re)create `branch` at `base`, run copier update on it and commit everything it changed."""
    git(project, "checkout", "--quiet", "-B", branch, base)
    from_version = read_answers(project).commit
    # The template's own after-update tasks run here (uv.lock among them): nothing to redo.
    run([*copier, "update", "--trust", "--defaults"], project)
    conflicts = conflicted_files(project)
    to_version = read_answers(project).commit
    git(project, "add", "--all")
    git(project, "commit", "--quiet", "--no-verify", "--message", commit_message(from_version, to_version, conflicts))
    return Update(from_version, to_version, conflicts, git(project, "rev-parse", "HEAD"))


def clone_url(src_path: str) -> str:
    """What `git clone` needs for copier's `_src_path`: its gh:/gl: shorthands expanded."""
    source = src_path.removeprefix("git+")
    for shorthand, host in (("gh:", "https://github.com/"), ("gl:", "https://gitlab.com/")):
        if source.startswith(shorthand):
            repository = source.removeprefix(shorthand).removesuffix(".git")
            return f"{host}{repository}.git"
    return source


def version_key(version: str) -> tuple[int, ...] | None:
    match = VERSION.match(version.strip())
    return tuple(int(part) for part in match.group(1).split(".")) if match else None


def changelog_sections(changelog: str, from_version: str, to_version: str) -> str:
    """The `## [X.Y.Z]` sections newer than `from_version`, up to and including `to_version`."""
    low, high = version_key(from_version), version_key(to_version)
    headings = list(CHANGELOG_HEADING.finditer(changelog))
    kept = []
    for heading, following in zip(headings, [*headings[1:], None], strict=True):
        version = version_key(heading.group("name"))
        if version is None or low is None or high is None or not low < version <= high:
            continue  # [Unreleased], or outside the range
        section = changelog[heading.start() : following.start() if following else len(changelog)]
        kept.append(LINK_REFERENCE.sub("", section).strip())
    return "\n\n".join(kept)


def read_template_changelog(src_path: str, version: str) -> str:
    """CHANGELOG.md at the root of the template, at `version`, from a shallow clone."""
    with tempfile.TemporaryDirectory(prefix="template-sync-") as scratch:
        run(
            ["git", "clone", "--quiet", "--depth", "1", "--no-checkout", "--branch", version, clone_url(src_path), "t"],
            Path(scratch),
        )
        return run(["git", "show", "HEAD:CHANGELOG.md"], Path(scratch) / "t")


def changelog_excerpt(src_path: str, update: Update) -> str:
    try:
        changelog = read_template_changelog(src_path, update.to_version)
    except SyncError as error:  # the pull request is still worth opening without it
        return f"CHANGELOG.md of the template could not be read at {update.to_version}:\n\n```\n{error}\n```"
    sections = changelog_sections(changelog, update.from_version, update.to_version)
    return sections or f"The template's CHANGELOG.md has no entry after {update.from_version}."


def conflicts_section(conflicts: Sequence[str]) -> str:
    if not conflicts:
        return "None: copier merged every template change with your edits."
    listed = "\n".join(f"- `{name}`" for name in conflicts)
    return f"""Your edits and the template's changes touch the same lines in:

{listed}

To resolve them, check out this branch (`git switch {DEFAULT_BRANCH}` after a fetch) and, in each
file, find `<<<<<<< before updating`: the lines above `=======` are yours, the lines below it
the template's, up to `>>>>>>> after updating`. Keep what the service needs, delete the three
marker lines, then `make install lint typecheck test` and commit and push to this branch. A
`.rej` file holds a change copier could not place: apply it by hand and delete the file.
The weekly sync leaves a branch with your commits on it alone."""


def before_merging(ci_runs: str) -> str:
    return f"""- CI ran on this branch ({ci_runs}) and passes.
- The diff keeps your own edits, above all in files you changed after the copy.
- `uv.lock` matches `pyproject.toml` (the update refreshes it; `make install` fails if not).
- Changes to `template.yaml`: a renamed or replaced resource is replaced on deploy;
  read the staging changeset before the change reaches production."""


def ci_runs_link(branch: str) -> str:
    """Where the dispatched CI run is: it shows on the branch, not among the pull request's checks."""
    server, repository = os.environ.get("GITHUB_SERVER_URL"), os.environ.get("GITHUB_REPOSITORY")
    if not (server and repository):
        return f"the sync dispatches it: Actions, {CI_WORKFLOW}, branch {branch}"
    return f"[its runs]({server}/{repository}/actions/workflows/{CI_WORKFLOW}?query=branch%3A{branch})"


def pull_request_body(update: Update, excerpt: str, ci_runs: str) -> str:
    body = "\n\n".join(
        [
            f"Template version **{update.from_version}** -> **{update.to_version}**, by `copier update` "
            "in `scripts/template_sync.py` (workflow *Template sync*).",
            f"## What changed in the template\n\n{excerpt}",
            f"## Conflicts\n\n{conflicts_section(update.conflicts)}",
            f"## Before merging\n\n{before_merging(ci_runs)}\n",
        ]
    )
    if len(body) > MAX_BODY_CHARACTERS:
        body = body[:MAX_BODY_CHARACTERS] + "\n\n(cut: read the template's CHANGELOG.md for the rest)\n"
    return body


def git_remote(project: Path, *args: str) -> str:
    # gh hands git the job's token: checkout keeps no credentials on disk.
    return git(project, "-c", "credential.helper=", "-c", "credential.helper=!gh auth git-credential", *args)


def remote_branch(project: Path, branch: str) -> str | None:
    """The commit `branch` points at on origin, fetched, or None when origin has no such branch."""
    listed = git_remote(project, "ls-remote", "origin", f"refs/heads/{branch}")
    if not listed:
        return None
    git_remote(project, "fetch", "--quiet", "origin", f"refs/heads/{branch}")
    return listed.split()[0]


def same_update(project: Path, ours: str, theirs: str) -> bool:
    """Both commits make the same change to the same parent (only their dates differ)."""
    return all(
        git(project, "rev-parse", f"{ours}{suffix}") == git(project, "rev-parse", f"{theirs}{suffix}")
        for suffix in ("^{tree}", "^")
    )


def push_branch(project: Path, update: Update, branch: str) -> bool:
    """Force-push the rebuilt branch; False when origin already has this very update."""
    published = remote_branch(project, branch)
    if published is not None:
        if not git(project, "log", "-1", "--format=%s", published).startswith(SUBJECT_PREFIX):
            raise SyncError(
                f"origin/{branch} has commits that are not the sync's own (a conflict resolution?): "
                f"left as it is. Merge or close its pull request and delete the branch to sync again."
            )
        if same_update(project, update.commit, published):
            return False
    lease = f"--force-with-lease=refs/heads/{branch}:{published or ''}"
    try:
        git_remote(project, "push", "--quiet", lease, "origin", f"{update.commit}:refs/heads/{branch}")
    except SyncError as error:
        if "without `workflows` permission" in str(error):
            raise SyncError(
                f"{error}\nThis update changes files under .github/workflows/, which GitHub lets no "
                "GITHUB_TOKEN push. Give the job a GitHub App token with the Workflows permission, or "
                "run this script on your machine with --publish (README: Template updates by pull request)."
            ) from error
        raise
    return True


def open_or_refresh_pull_request(project: Path, base: str, branch: str, title: str, body: str) -> str:
    """Edit the open pull request of `branch` if there is one, else open it. Returns what was done."""
    numbers = run(
        ["gh", "pr", "list", "--head", branch, "--base", base, "--state", "open", "--json", "number"], project
    )
    existing = [str(entry["number"]) for entry in json.loads(numbers or "[]")]
    with tempfile.NamedTemporaryFile("w", suffix=".md", encoding="utf-8") as body_file:
        body_file.write(body)
        body_file.flush()
        if existing:
            run(["gh", "pr", "edit", existing[0], "--title", title, "--body-file", body_file.name], project)
            return f"refreshed pull request #{existing[0]}"
        create = ["gh", "pr", "create", "--base", base, "--head", branch, "--title", title]
        try:
            run([*create, "--body-file", body_file.name], project)
        except SyncError as error:
            if "not permitted to create or approve pull requests" in str(error):
                raise SyncError(
                    f"{error}\nAllow it once: Settings, Actions, General, Workflow permissions, "
                    '"Allow GitHub Actions to create and approve pull requests".'
                ) from error
            raise
        return "opened a pull request"


def dispatch_ci(project: Path, branch: str) -> None:
    # A push or pull request made with the job's GITHUB_TOKEN starts no workflow; a
    # workflow_dispatch does, and CI's checks then appear on the branch's commit.
    run(["gh", "workflow", "run", CI_WORKFLOW, "--ref", branch], project)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--publish", action="store_true", help="push the branch, open or refresh its PR, run CI")
    parser.add_argument("--base", help="the branch to start from and open the PR against (default: the current one)")
    parser.add_argument("--branch", default=DEFAULT_BRANCH, help=f"the sync branch (default: {DEFAULT_BRANCH})")
    parser.add_argument("--copier", default=DEFAULT_COPIER, help=f"how to run copier (default: {DEFAULT_COPIER})")
    parser.add_argument("--project", type=Path, default=Path(), help="the service's directory (default: .)")
    return parser.parse_args(argv)


def sync(args: argparse.Namespace) -> None:
    project = args.project.resolve()
    copier = shlex.split(args.copier)
    answers = read_answers(project)
    latest = newer_version(copier, project)
    if latest is None:
        print(f"The template is up to date: this service is at {answers.commit}.")
        return
    require_clean(project)
    started_on = current_branch(project)
    base = args.base or started_on
    update = update_on_branch(copier, project, base, args.branch)
    git(project, "checkout", "--quiet", started_on)
    title = f"{SUBJECT_PREFIX}{update.from_version} to {update.to_version}"
    body = pull_request_body(update, changelog_excerpt(answers.src_path, update), ci_runs_link(args.branch))
    print(f"Branch {args.branch}: {title} (files in conflict: {len(update.conflicts)})\n\n{body}")
    if args.publish:
        pushed = push_branch(project, update, args.branch)
        print(open_or_refresh_pull_request(project, base, args.branch, title, body))
        if pushed:
            dispatch_ci(project, args.branch)
            print(f"dispatched {CI_WORKFLOW} on {args.branch}")
        else:
            print(f"origin/{args.branch} already holds this update: not pushed, CI not run again")


def main(argv: Sequence[str] | None = None) -> int:
    try:
        sync(parse_args(argv))
    except SyncError as error:
        print(f"template sync failed: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
