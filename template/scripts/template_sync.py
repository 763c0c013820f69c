"""Bring the newest version of this service's template in as one pull request.

Run by hand it builds the local branch and prints the pull request's body; with
--publish it also pushes it and opens (or refreshes) the pull request with your gh login:

    python scripts/template_sync.py                # is there a newer template? build the branch
    python scripts/template_sync.py --publish      # push it and open (or refresh) the pull request

--publish runs the template's own code (copier runs its migrations and tasks) on your
machine, with your gh login in reach. When the workflow could not push an update (it
changes a workflow), publish the bundle it built instead, as its issue says:
`gh run download <run id> -n template-sync -D DIR`, then `--publish-from DIR`.

.github/workflows/template-sync.yml runs the same two halves in two jobs, so that the
template's own code (copier runs its migrations and tasks) never runs beside a token that
can write: `--prepare DIR` builds the branch with read-only access and writes it to DIR
as a git bundle, with the template's CHANGELOG excerpt and what copier reported;
`--publish-from DIR`, in a fresh checkout of the default branch, checks that the bundle
holds one commit on top of it, writes the pull request's body itself (the conflicts read
from that commit) and runs only git and gh.

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
import shutil
import stat
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
ISSUE_PREFIX = "Template update to push from a machine: "
# Who commits the update: a commit on the branch by anyone else (an amended or rebased
# sync commit included, as git records the amender as its committer) is the owner's work.
SYNC_NAME = "github-actions[bot]"
SYNC_EMAIL = "41898282+github-actions[bot]@users.noreply.github.com"
# git rev-parse suffix: the commit a ref names, refusing anything else.
AS_COMMIT = "^{commit}"
CONFLICT_MARKER = re.compile(r"^<<<<<<< before updating", re.MULTILINE)
# A version has a dot: a bare commit (`231b655`, a render from a clone without tags) is none.
VERSION = re.compile(r"^v?(\d+(?:\.\d+)+)")
AFTER_UPDATE = "After update: "
# GitHub notifies whoever an @mention names: the template's changelog is not theirs to ping.
MENTION = re.compile(r"@(?=[\w-])")
# copier's sources that a runner can clone; anything else is a path on someone's machine.
REMOTE_SOURCE = re.compile(r"^(gh:|gl:|git\+|(?!file://)[a-z][a-z0-9+.-]*://|[\w.-]+@[\w.-]+:)")
# GitHub's refusal of a push that changes a workflow: "refusing to allow a GitHub App to create or
# update workflow ... without `workflows` permission" for an App token (GITHUB_TOKEN), "an OAuth
# App" (a gh login) or "a Personal Access Token ... without `workflow` scope" for a person's.
REFUSED_WORKFLOW_PUSH = re.compile(r"refusing to allow an? .+ to create or update workflow")
# The handoff between the two jobs: exactly these files. The changelog excerpt and what the
# update job reports are shown in the pull request as its report; the rest is checked here.
BUNDLE, METADATA, EXCERPT = "update.bundle", "metadata.json", "changelog.md"
HANDOFF_FILES = frozenset({BUNDLE, METADATA, EXCERPT})
ARTIFACT = "template-sync"  # the update job's artifact (template-sync.yml)
ARTIFACT_DAYS = 7  # its retention-days: how long the command in a refused push's issue works
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
    after_update: str = ""
    lock_stale: bool = False

    @property
    def title(self) -> str:
        return f"{SUBJECT_PREFIX}{self.from_version} to {self.to_version}"


def run_full(command: Sequence[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)  # noqa: S603 - our own commands
    if done.returncode != 0:
        raise SyncError(f"`{shlex.join(command)}` failed (exit {done.returncode}):\n{done.stdout}{done.stderr}")
    return done


def run(command: Sequence[str], cwd: Path) -> str:
    return run_full(command, cwd).stdout


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


def is_local_source(src_path: str) -> bool:
    """A template copied from a path (or file://): only the machine that has it can update from it."""
    return not REMOTE_SOURCE.match(src_path)


def require_reachable_source(answers: Answers) -> None:
    if os.environ.get("GITHUB_ACTIONS") == "true" and is_local_source(answers.src_path):
        raise SyncError(
            f"{ANSWERS_FILE} says the template is at `{answers.src_path}`, a path on the machine it was "
            f"copied on, which this runner cannot reach: edit `_src_path` in {ANSWERS_FILE} to "
            "gh:<org>/<template> (or the template's git URL) and commit it"
        )


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


def base_commit(project: Path, base: str) -> str:
    """The commit of branch `base`: the local branch, else origin's, fetched if need be.

    A checkout of another branch (a dispatch from a feature branch) has neither.
    """
    for ref in (f"refs/heads/{base}", f"refs/remotes/origin/{base}"):
        found = subprocess.run(  # noqa: S603 - our own command
            ["git", "rev-parse", "--verify", "--quiet", f"{ref}{AS_COMMIT}"],  # noqa: S607 - git from PATH
            cwd=project,
            capture_output=True,
            text=True,
            check=False,
        )
        if found.returncode == 0:
            return found.stdout.strip()
    git(project, "fetch", "--quiet", "origin", f"+refs/heads/{base}:refs/remotes/origin/{base}")
    return git(project, "rev-parse", "--verify", f"refs/remotes/origin/{base}{AS_COMMIT}")


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


def conflicts_in_commit(project: Path, commit: str) -> list[str]:
    """Conflicted files as the commit itself holds them, by git alone: markers and .rej files."""
    grep = subprocess.run(  # noqa: S603 - our own command
        ["git", "grep", "-l", "-I", "-e", CONFLICT_MARKER.pattern, commit, "--"],  # noqa: S607 - git from PATH
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    if grep.returncode not in (0, 1):  # 1: no match
        raise SyncError(f"`git grep` in {commit} failed (exit {grep.returncode}):\n{grep.stderr}")
    marked = [line.removeprefix(f"{commit}:") for line in grep.stdout.splitlines()]
    tree = git(project, "ls-tree", "-r", "--name-only", commit).splitlines()
    rejected = [name for name in tree if name.endswith(".rej")]
    return sorted(set(marked) | set(rejected))


def is_refused_workflow_push(message: str) -> bool:
    return REFUSED_WORKFLOW_PUSH.search(message) is not None


def commit_message(from_version: str, to_version: str, conflicts: Sequence[str]) -> str:
    lines = [f"{SUBJECT_PREFIX}{from_version} to {to_version}", "", "copier update --trust --defaults."]
    if conflicts:
        lines += ["", "Committed with conflicts left for review:", *(f"- {name}" for name in conflicts)]
    return "\n".join(lines) + "\n"


def after_update_line(output: str) -> str:
    """What the template's after-update step (it refreshes uv.lock) printed, or ''."""
    lines = [line for line in output.splitlines() if line.startswith(AFTER_UPDATE)]
    return lines[-1] if lines else ""


def lock_is_stale(project: Path) -> bool:
    """True when uv.lock does not match pyproject.toml (or uv cannot tell), as CI's `UV_LOCKED` would find."""
    uv = os.environ.get("UV") or shutil.which("uv")  # UV: the Makefile's name for it
    if uv is None or not (project / "pyproject.toml").is_file():
        return uv is None
    checked = subprocess.run([uv, "lock", "--check", "--quiet"], cwd=project, capture_output=True, check=False)  # noqa: S603
    return checked.returncode != 0


def update_on_branch(copier: Sequence[str], project: Path, base: str, branch: str) -> Update:
    """(Re)create `branch` at `base`, run copier update on it and commit everything it changed."""
    git(project, "checkout", "--quiet", "-B", branch, base_commit(project, base))
    from_version = read_answers(project).commit
    # The template's own after-update step runs here and refreshes uv.lock, best effort: it
    # reports on stderr, and the lock is checked again below.
    done = run_full([*copier, "update", "--trust", "--defaults"], project)
    print(done.stderr, end="", file=sys.stderr)  # copier reports on stderr: keep it in the job's log
    after_update = after_update_line(done.stderr + done.stdout)
    stale = lock_is_stale(project)
    conflicts = conflicted_files(project)
    to_version = read_answers(project).commit
    git(project, "add", "--all")
    identity = {
        **os.environ,
        "GIT_COMMITTER_NAME": SYNC_NAME,
        "GIT_COMMITTER_EMAIL": SYNC_EMAIL,
    }
    message = commit_message(from_version, to_version, [*conflicts, *(["uv.lock (stale)"] if stale else [])])
    run_full(["git", "commit", "--quiet", "--no-verify", "--message", message], project, identity)
    return Update(from_version, to_version, conflicts, git(project, "rev-parse", "HEAD"), after_update, stale)


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
        if version is None or high is None or not (low < version if low else version == high) or version > high:
            continue  # [Unreleased], or outside the range; from a bare commit, the new version's own entry
        section = changelog[heading.start() : following.start() if following else len(changelog)]
        kept.append(LINK_REFERENCE.sub("", section).strip())
    return neutralise_mentions("\n\n".join(kept))


def neutralise_mentions(text: str) -> str:
    """`@name` as GitHub shows it, without notifying anyone (a zero-width space after the @)."""
    return MENTION.sub("@\u200b", text)


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


STALE_LOCK_ITEM = "- `uv.lock` does not match `pyproject.toml`: run `uv lock` and commit it to this branch"


def conflicts_section(conflicts: Sequence[str], lock_stale: bool = False, reported: str = "") -> str:
    lock = f"\n\n{STALE_LOCK_ITEM} (CI installs with `UV_LOCKED` and fails until then){reported}." if lock_stale else ""
    if not conflicts:
        if lock_stale:
            return f"copier merged every template change with your edits, but:{lock}"
        return "None: copier merged every template change with your edits."
    listed = "\n".join(f"- `{name}`" for name in conflicts)
    return f"""Your edits and the template's changes touch the same lines in:

{listed}{lock}

To resolve them, check out this branch (`git switch {DEFAULT_BRANCH}` after a fetch) and, in each
file, find `<<<<<<< before updating`: the lines above `=======` are yours, the lines below it
the template's, up to `>>>>>>> after updating`. Keep what the service needs, delete the three
marker lines, then `make install lint typecheck test` and commit and push to this branch. A
`.rej` file holds a change copier could not place: apply it by hand and delete the file.
The weekly sync leaves a branch with your commits on it alone."""


def before_merging(ci_runs: str, lock_stale: bool) -> str:
    lock = (
        "`uv.lock` matches `pyproject.toml`: it does not yet (see Conflicts)"
        if lock_stale
        else "`uv.lock` matches `pyproject.toml` (`uv lock --check` passed after the update)"
    )
    return f"""- CI ran on this branch ({ci_runs}) and passes.
- The diff keeps your own edits, above all in files you changed after the copy.
- {lock}.
- Changes to `template.yaml`: a renamed or replaced resource is replaced on deploy;
  read the staging changeset before the change reaches production."""


def ci_runs_link(branch: str) -> str:
    """Where the dispatched CI run is: it shows on the branch, not among the pull request's checks."""
    server, repository = os.environ.get("GITHUB_SERVER_URL"), os.environ.get("GITHUB_REPOSITORY")
    if not (server and repository):
        return f"the sync dispatches it: Actions, {CI_WORKFLOW}, branch {branch}"
    return f"[its runs]({server}/{repository}/actions/workflows/{CI_WORKFLOW}?query=branch%3A{branch})"


# In the publishing job, what only the update job (which ran the template's code) can tell.
REPORTED = " (as the update job reported it)"


def pull_request_body(update: Update, excerpt: str, ci_runs: str, *, reported: bool = False) -> str:
    """The body; `reported`: the excerpt, the after-update line and the lock check are the update
    job's word, labelled so, while the versions and the conflicted files come from the commit."""
    label = REPORTED if reported else ""
    after = update.after_update or "(the template's after-update step printed nothing)"
    body = "\n\n".join(
        [
            f"Template version **{update.from_version}** -> **{update.to_version}**, by `copier update` "
            "in `scripts/template_sync.py` (workflow *Template sync*).",
            f"## What changed in the template{label}\n\n{excerpt}",
            f"## Conflicts\n\n{conflicts_section(update.conflicts, update.lock_stale, label)}",
            f"## After the update{label}\n\n```\n{after}\n```",
            f"## Before merging\n\n{before_merging(ci_runs, update.lock_stale)}\n",
        ]
    )
    return cap_body(neutralise_mentions(body))


def cap_body(body: str) -> str:
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


def is_sync_commit(project: Path, tip: str, base: str) -> bool:
    """`tip` is one commit by the sync, unamended, straight on a commit of the default branch."""
    subject, committer, parents = git(project, "log", "-1", "--format=%s%n%ce%n%P", tip).split("\n")
    if not subject.startswith(SUBJECT_PREFIX) or committer != SYNC_EMAIL or len(parents.split()) != 1:
        return False
    on_base = subprocess.run(  # noqa: S603 - our own command
        ["git", "merge-base", "--is-ancestor", parents, base],  # noqa: S607 - git from PATH
        cwd=project,
        capture_output=True,
        check=False,
    )
    return on_base.returncode == 0


class PushRefused(SyncError):
    """GitHub refused the branch: the update changes a workflow and the token may not."""


def push_branch(project: Path, update: Update, branch: str) -> bool:
    """Force-push the rebuilt branch; False when origin already has this very update."""
    published = remote_branch(project, branch)
    if published is not None:
        if not is_sync_commit(project, published, git(project, "rev-parse", f"{update.commit}^")):
            raise SyncError(
                f"origin/{branch} has commits that are not the sync's own (a conflict resolution, an "
                "amended commit?): left as it is. Merge or close its pull request and delete the branch "
                "to sync again."
            )
        if same_update(project, update.commit, published):
            return False
    lease = f"--force-with-lease=refs/heads/{branch}:{published or ''}"
    try:
        git_remote(project, "push", "--quiet", lease, "origin", f"{update.commit}:refs/heads/{branch}")
    except SyncError as error:
        if is_refused_workflow_push(str(error)):
            raise PushRefused(str(error)) from error
        raise
    return True


def closed_pull_request(project: Path, base: str, branch: str, to_version: str) -> str | None:
    """The number of a sync pull request to `to_version` that was closed without merging."""
    listed = run(
        ["gh", "pr", "list", "--head", branch, "--base", base, "--state", "closed", "--json", "number,title,state"],
        project,
    )
    for entry in json.loads(listed or "[]"):
        title = str(entry.get("title", ""))
        if title.startswith(SUBJECT_PREFIX) and title.endswith(f" to {to_version}") and entry.get("state") != "MERGED":
            return str(entry["number"])
    return None


def with_body_file(body: str, command: list[str], project: Path) -> str:
    with tempfile.NamedTemporaryFile("w", suffix=".md", encoding="utf-8") as body_file:
        body_file.write(body)
        body_file.flush()
        return run([*command, "--body-file", body_file.name], project)


def open_or_refresh_pull_request(project: Path, base: str, branch: str, title: str, body: str) -> str:
    """Edit the open pull request of `branch` if there is one, else open it. Returns what was done."""
    numbers = run(
        ["gh", "pr", "list", "--head", branch, "--base", base, "--state", "open", "--json", "number"], project
    )
    existing = [str(entry["number"]) for entry in json.loads(numbers or "[]")]
    if existing:
        with_body_file(body, ["gh", "pr", "edit", existing[0], "--title", title], project)
        return f"refreshed pull request #{existing[0]}"
    try:
        with_body_file(body, ["gh", "pr", "create", "--base", base, "--head", branch, "--title", title], project)
    except SyncError as error:
        if "not permitted to create or approve pull requests" in str(error):
            raise SyncError(
                f"{error}\nAllow it once: Settings, Actions, General, Workflow permissions, "
                '"Allow GitHub Actions to create and approve pull requests".'
            ) from error
        raise
    return "opened a pull request"


LOCAL_PUBLISH_WARNING = (
    "`python3 scripts/template_sync.py --publish` (the whole sync on your machine) instead runs the "
    "template's own code (`copier update --trust`) with your credentials in reach."
)


def local_command(base: str, run_id: str) -> str:
    """Publish the bundle this run built and checked, from a machine: no copier, no template code."""
    return (
        "gh auth refresh --scopes workflow    # once: a login that may push workflow files\n"
        f"git switch {base} && git pull --ff-only\n"
        'dir="$(mktemp -d)"\n'
        f'gh run download {run_id} -n {ARTIFACT} -D "$dir"\n'
        f'python3 scripts/template_sync.py --publish-from "$dir" --base {base}'
    )


def issue_body(update: Update, base: str, body: str) -> str:
    run_id = os.environ.get("GITHUB_RUN_ID") or "<run id>"
    return cap_body(
        f"""The weekly template sync built **{update.from_version}** -> **{update.to_version}**, but GitHub
refused to let the workflow push it: the update changes files under `.github/workflows/`, which
the workflow's `GITHUB_TOKEN` may never do. Push the commit this run built and checked from a
machine instead, in an up-to-date clone of this repository:

```
{local_command(base, run_id)}
```

That pushes the branch and opens the pull request below, and the push runs CI; the next weekly
run finds it and keeps it up to date. Close this issue then. The run keeps its `{ARTIFACT}`
artifact {ARTIFACT_DAYS} days; after that, or if {base} has moved since (the command then refuses
the bundle), run the workflow again (Actions, Template sync, Run workflow) and use the command
of the issue it refreshes. {LOCAL_PUBLISH_WARNING} (README: Template updates by pull request.)

---

Below, the pull request's body, for reading only: the commands to run are the ones above. Its
changelog excerpt and after-update report come from the update job, which ran the template's code.

{body}"""
    )


def open_or_refresh_issue(project: Path, update: Update, base: str, body: str) -> str:
    """One open issue asks for a push from a machine: refreshed if there is one, else opened."""
    title = f"{ISSUE_PREFIX}{update.from_version} to {update.to_version}"
    search = f'"{ISSUE_PREFIX.strip()}" in:title'
    listed = run(["gh", "issue", "list", "--state", "open", "--search", search, "--json", "number,title"], project)
    existing = [str(entry["number"]) for entry in json.loads(listed or "[]") if entry["title"].startswith(ISSUE_PREFIX)]
    text = issue_body(update, base, body)
    if existing:
        with_body_file(text, ["gh", "issue", "edit", existing[0], "--title", title], project)
        return f"refreshed issue #{existing[0]}"
    with_body_file(text, ["gh", "issue", "create", "--title", title], project)
    return "opened an issue"


def dispatch_ci(project: Path, branch: str) -> None:
    # A push or pull request made with the job's GITHUB_TOKEN starts no workflow; a
    # workflow_dispatch does, and CI's checks then appear on the branch's commit.
    run(["gh", "workflow", "run", CI_WORKFLOW, "--ref", branch], project)


def publish(project: Path, update: Update, base: str, branch: str, body: str, *, in_ci: bool) -> None:
    """Push the branch, open or refresh its pull request and start CI on it: git and gh only."""
    closed = closed_pull_request(project, base, branch, update.to_version)
    if closed is not None:
        print(
            f"Pull request #{closed} for {update.to_version} was closed without merging: this version "
            "is skipped. The next template version opens a new pull request."
        )
        return
    try:
        pushed = push_branch(project, update, branch)
    except PushRefused as error:
        if not in_ci:
            raise SyncError(
                f"{error}\nThis update changes files under .github/workflows/: your gh login needs the "
                "`workflow` scope (`gh auth refresh --scopes workflow`), then run this again."
            ) from error
        print(
            f"GitHub refused the push: {update.title} changes .github/workflows/, which this "
            f"workflow's token may not push. {open_or_refresh_issue(project, update, base, body)} "
            "with the command that pushes it from a machine."
        )
        return
    print(open_or_refresh_pull_request(project, base, branch, update.title, body))
    if pushed and in_ci:
        dispatch_ci(project, branch)
        print(f"dispatched {CI_WORKFLOW} on {branch}")
    elif pushed:
        # Your own push started CI; a dispatch would cancel that run (CI's concurrency group).
        print(f"pushed {branch}: the push runs {CI_WORKFLOW}")
    else:
        print(f"origin/{branch} already holds this update: not pushed, CI not run again")


# ---------------------------------------------------------------- the two jobs' handoff
def write_handoff(project: Path, update: Update, base_sha: str, branch: str, excerpt: str, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    git(project, "bundle", "create", "--quiet", str((out / BUNDLE).resolve()), f"refs/heads/{branch}", f"^{base_sha}")
    metadata = {
        "base": base_sha,
        "commit": update.commit,
        "lock_stale": update.lock_stale,
        "after_update": update.after_update,
    }
    (out / METADATA).write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
    (out / EXCERPT).write_text(excerpt, encoding="utf-8")


def answers_version(project: Path, revision: str) -> str:
    text = git(project, "show", f"{revision}:{ANSWERS_FILE}")
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key == "_commit":
            return value.strip().strip("'\"")
    raise SyncError(f"{ANSWERS_FILE} at {revision} has no _commit")


def require_handoff_files(handoff: Path) -> None:
    """The handoff holds exactly its files, each a regular file (no symlink to something of this job's)."""
    try:
        names = {entry.name for entry in handoff.iterdir()}
    except OSError as error:
        raise SyncError(f"the update's handoff {handoff} cannot be read: {error}") from error
    if names != HANDOFF_FILES:
        raise SyncError(f"the update's handoff must hold {sorted(HANDOFF_FILES)} alone, not {sorted(names)}")
    for name in sorted(names):
        if not stat.S_ISREG((handoff / name).lstat().st_mode):
            raise SyncError(f"the update's handoff has {name} as something other than a regular file")


def read_handoff(project: Path, base: str, branch: str, handoff: Path) -> tuple[Update, str]:
    """The update job's commit, checked: one commit, by the sync, on the default branch as checked out here.

    Returns it with the changelog excerpt. The versions and the conflicted files come from the
    commit itself; the excerpt, the after-update line and the lock check are the update job's report.
    """
    require_handoff_files(handoff)
    base_sha = git(project, "rev-parse", "--verify", f"refs/heads/{base}{AS_COMMIT}")
    bundle = str((handoff / BUNDLE).resolve())
    heads = git(project, "bundle", "list-heads", bundle).splitlines()
    if [line.split()[1] for line in heads] != [f"refs/heads/{branch}"]:
        raise SyncError(f"the update's bundle must hold refs/heads/{branch} alone, not: {heads}")
    try:
        git(project, "bundle", "verify", "--quiet", bundle)
    except SyncError as error:
        raise SyncError(f"{base} moved while the update ran, or the bundle is not built on it: {error}") from error
    candidate = "refs/template-sync/candidate"
    git(project, "fetch", "--quiet", "--no-tags", bundle, f"+refs/heads/{branch}:{candidate}")
    commit = git(project, "rev-parse", candidate)
    if git(project, "rev-parse", "--verify", f"{candidate}{AS_COMMIT}") != commit:
        raise SyncError(f"the update's bundle names {commit}, which is not a commit")
    parents = git(project, "log", "-1", "--format=%P", commit).split()
    if parents != [base_sha] or not is_sync_commit(project, commit, base_sha):
        raise SyncError(
            f"the update's commit {commit} is not one sync commit on top of {base} ({base_sha}): "
            f"{base} moved while the update ran (the next run redoes it), or the handoff was tampered with"
        )
    to_version = answers_version(project, commit)
    if version_key(to_version) is None:
        raise SyncError(f"the update records `{to_version}` as the template version: not a version")
    metadata = json.loads((handoff / METADATA).read_text(encoding="utf-8"))
    if not isinstance(metadata, dict):
        raise SyncError(f"the update's {METADATA} is not a JSON object")
    update = Update(
        from_version=answers_version(project, base_sha),
        to_version=to_version,
        conflicts=conflicts_in_commit(project, commit),
        commit=commit,
        after_update=str(metadata.get("after_update") or "").partition("\n")[0],
        lock_stale=bool(metadata.get("lock_stale", False)),
    )
    return update, (handoff / EXCERPT).read_text(encoding="utf-8")


# ---------------------------------------------------------------- command line
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    halves = parser.add_mutually_exclusive_group()
    halves.add_argument("--publish", action="store_true", help="push the branch, open or refresh its PR, run CI")
    halves.add_argument("--prepare", type=Path, metavar="DIR", help="CI, first job: build the update into DIR")
    halves.add_argument("--publish-from", type=Path, metavar="DIR", help="CI, second job: publish DIR's update")
    parser.add_argument("--base", help="the branch to start from and open the PR against (default: the current one)")
    parser.add_argument("--branch", default=DEFAULT_BRANCH, help=f"the sync branch (default: {DEFAULT_BRANCH})")
    parser.add_argument("--copier", default=DEFAULT_COPIER, help=f"how to run copier (default: {DEFAULT_COPIER})")
    parser.add_argument("--project", type=Path, default=Path(), help="the service's directory (default: .)")
    return parser.parse_args(argv)


def build(args: argparse.Namespace, project: Path) -> tuple[Update, str, str, str] | None:
    """Build the update branch; (update, its base branch, the changelog excerpt, the pull request's body),
    or None if up to date."""
    copier = shlex.split(args.copier)
    answers = read_answers(project)
    require_reachable_source(answers)
    latest = newer_version(copier, project)
    if latest is None:
        print(f"The template is up to date: this service is at {answers.commit}.")
        return None
    require_clean(project)
    started_on = current_branch(project)
    base = args.base or started_on
    update = update_on_branch(copier, project, base, args.branch)
    git(project, "checkout", "--quiet", started_on)
    excerpt = changelog_excerpt(answers.src_path, update)
    body = pull_request_body(update, excerpt, ci_runs_link(args.branch))
    print(f"Branch {args.branch}: {update.title} (files in conflict: {len(update.conflicts)})\n\n{body}")
    return update, base, excerpt, body


def sync(args: argparse.Namespace) -> None:
    project = args.project.resolve()
    # In CI the publish job dispatches CI and turns a refused push into an issue; on a
    # person's machine their own push starts CI, and a refusal is theirs to fix.
    in_ci = os.environ.get("GITHUB_ACTIONS") == "true"
    if args.publish_from is not None:
        base = args.base or current_branch(project)
        update, excerpt = read_handoff(project, base, args.branch, args.publish_from)
        body = pull_request_body(update, excerpt, ci_runs_link(args.branch), reported=True)
        print(f"Publishing {update.title} ({update.commit})")
        publish(project, update, base, args.branch, body, in_ci=in_ci)
        return
    built = build(args, project)
    if built is None:
        return
    update, base, excerpt, body = built
    if args.prepare is not None:
        parent = git(project, "rev-parse", f"{update.commit}^")
        write_handoff(project, update, parent, args.branch, excerpt, args.prepare)
        print(f"The update is in {args.prepare} for the publishing job.")
    elif args.publish:
        publish(project, update, base, args.branch, body, in_ci=in_ci)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        sync(parse_args(argv))
    except SyncError as error:
        print(f"template sync failed: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
