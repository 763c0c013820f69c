"""A judge imported once per xdist worker, forked for every service it judges.

Run with the judge's own Python (judges.py starts it): `python judge_server.py checkov`.
checkov spends 5.9 of its 10.4 s CPU on one service importing itself; this
process pays that once, then serves one request per line on stdin
({"argv": [...], "cwd": "...", "env": {...}}, with "script": a path, the judge's
Python running that script instead of the judge) with one answer per line
({"returncode", "stdout", "stderr", "cpu"}). Each request runs in a fresh fork
of the process that has only imported the judge, so nothing one service's run
leaves in memory reaches the next one's: the verdict is the command line's.

Standard library only, besides the judge it imports.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import tempfile
import warnings
from collections.abc import Callable


def checkov() -> Callable[[list[str]], object]:
    from checkov.main import Checkov  # the import the fork saves

    def main(argv: list[str]) -> object:
        # What checkov's own console script does, with these arguments.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=SyntaxWarning)
            return Checkov(argv=argv).run()

    return main


def sam() -> Callable[[list[str]], object]:
    # `sam validate --lint` imports the translator and cfn-lint on each run: import them now.
    import cfnlint.api  # noqa: F401
    import samcli.commands.validate.validate  # noqa: F401
    import samtranslator.translator.transform  # noqa: F401
    from cfnlint.schema.manager import PROVIDER_SCHEMA_MANAGER  # noqa: F401 - registry_handlers.py, run here too
    from samcli.cli.main import cli

    def main(argv: list[str]) -> object:
        return cli.main(args=argv, prog_name="sam")  # click exits with the command's status

    return main


JUDGES = {"checkov": checkov, "sam": sam}


def exit_code(value: object) -> int:
    """sys.exit's convention: None is 0, an int itself, anything else 1."""
    if value is None:
        return 0
    return value if isinstance(value, int) else 1


def run_script(script: str) -> Callable[[list[str]], object]:
    """`python script argv...` in this process: a harness script that imports what the judge imported."""

    def main(argv: list[str]) -> object:
        import runpy

        sys.argv = [script, *argv]
        sys.path.insert(0, os.path.dirname(script))  # as `python script` puts the script's directory first
        runpy.run_path(script, run_name="__main__")
        return None

    return main


def judge_in_child(
    main: Callable[[list[str]], object], argv: list[str], cwd: str, env: dict[str, str], out: int, err: int
) -> None:
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    os.dup2(out, 1)
    os.dup2(err, 2)
    code = 1
    try:
        code = exit_code(main(argv))
    except SystemExit as stop:
        code = exit_code(stop.code)
    except BaseException:  # the judge crashed: its traceback is its answer, as from the command line
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def serve(name: str) -> None:
    answers = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # whatever the judge prints outside a request is not an answer
    main = JUDGES[name]()
    own = resource.getrusage(resource.RUSAGE_SELF)
    answers.write(json.dumps({"ready": name, "cpu": own.ru_utime + own.ru_stime}) + "\n")
    answers.flush()
    for line in sys.stdin:
        request = json.loads(line)
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                run = run_script(request["script"]) if request.get("script") else main
                judge_in_child(run, request["argv"], request["cwd"], request["env"], out.fileno(), err.fileno())
            _, status, usage = os.wait4(pid, 0)
            out.seek(0)
            err.seek(0)
            answer = {
                "returncode": os.waitstatus_to_exitcode(status),
                "stdout": out.read().decode(errors="replace"),
                "stderr": err.read().decode(errors="replace"),
                "cpu": usage.ru_utime + usage.ru_stime,
            }
        answers.write(json.dumps(answer) + "\n")
        answers.flush()


if __name__ == "__main__":
    serve(sys.argv[1])
