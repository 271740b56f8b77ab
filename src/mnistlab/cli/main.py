"""The `mnistlab` command line: parse flags, set up the runtime once, call one library function per command."""

from __future__ import annotations

import argparse
import contextlib
import errno
import gc
import os
import re
import signal
import sys
import warnings

from mnistlab.cli import commands, image_commands
from mnistlab.cli.commands import EXIT_USER_ERROR, print_error
from mnistlab.cli.parser import build_parser
from mnistlab.common.cpu import auto_threads, available_cores, prefer_passive_waiting
from mnistlab.common.errors import ConfigError, MnistlabError

EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report Ctrl-C
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as shells report a command whose reader went away (| head)
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
MAX_THREADS = 256  # CPU threads per process; more only adds scheduling overhead
DRAWS_REPORT = ("compare", "report")  # the commands that draw a run's figures
LISTING = ("models", "data", "runs")  # the commands that only list or check files: no PyTorch, no runtime


COMMANDS = {  # each command's name -> its function: one library call, then what it prints
    "compare": commands.run_compare_command,
    "models": commands.run_models_command,
    "train": commands.run_train_command,
    "tune": commands.run_tune_command,
    "evaluate": commands.run_evaluate_command,
    "export": commands.run_export_command,
    "report": commands.run_report_command,
    "data": commands.run_data_command,
    "runs": commands.run_runs_command,
    "compare-runs": commands.run_compare_runs_command,
    "card": commands.run_card_command,
    "track": commands.run_track_command,
    "predict": image_commands.run_predict_command,
    "explain": image_commands.run_explain_command,
    "serve": image_commands.run_serve_command,
}


# The commands whose flags can be wrong in ways argparse cannot see (an unknown model, a bad setting or seed
# list, a missing checkpoint or run folder, a missing extra): checked before the runtime loads PyTorch, so a
# typo is refused at once, not after seconds of imports. The command itself checks again (microseconds for
# flags, milliseconds for a run folder's metrics.json), so it stays right when called on its own.
ARGUMENT_CHECKS = {
    "compare": commands.compare_arguments,
    "train": commands.one_model_arguments,
    "tune": commands.one_model_arguments,
    "track": commands.track_arguments,
    "report": commands.run_folder_arguments,
    "predict": commands.predict_arguments,
    **dict.fromkeys(["evaluate", "explain", "export", "card"], commands.checkpoint_arguments),
}


def main(argv: list[str] | None = None, own_process: bool = False) -> int:
    """Run the CLI; return the exit code (0 ok, 2 user error, 130 interrupted).

    `own_process`: the process runs this one command and ends (the console script), so the objects its imports
    made live as long as it does. They are frozen out of the garbage collector's sight once the runtime has
    loaded PyTorch: otherwise every full collection walks PyTorch's ~160,000 objects again, a tenth of a second
    each, several times a command. A caller that goes on after `main` returns keeps its collector as it was.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    if any("\x00" in argument for argument in argv):  # no shell can pass one; a caller of main() can
        print_error("an argument contains a NUL character; remove it")
        return EXIT_USER_ERROR
    options = argv[:argv.index("--")] if "--" in argv else argv  # after a bare "--", "--x=--" can be a file name
    bare = next((argument for argument in options if re.fullmatch(r"--?[A-Za-z][\w-]*=--", argument)), None)
    if bare:  # argparse drops "--" from an explicit value, leaving an empty list where one value belongs
        print_error(f"{bare}: '--' is not a value; give {bare[:-3]} a value, or leave it out")
        return EXIT_USER_ERROR
    args = build_parser().parse_args(argv)
    try:
        if isinstance(args.threads, int) and not 1 <= args.threads <= MAX_THREADS:
            raise ConfigError(f"--threads {args.threads} is invalid; give an integer from 1 to {MAX_THREADS}, or auto")
        if args.command in ARGUMENT_CHECKS:
            ARGUMENT_CHECKS[args.command](args)
        if args.threads == "auto":
            args.threads = choose_threads(args)
        with figures_beside(args, own_process), command_runtime(args), warnings.catch_warnings():
            if own_process:
                gc.freeze()
            warnings.showwarning = show_warning  # restored when the block ends
            return COMMANDS[args.command](args)
    except MnistlabError as error:
        print_error(str(error))
        return EXIT_USER_ERROR
    except BrokenPipeError:  # the reader of our output went away (mnistlab models | head -1): nothing to report
        return EXIT_BROKEN_PIPE
    except OSError as error:  # the disk filled up or a folder vanished mid-run: files already written stay whole
        where = f"{error.filename}: " if error.filename else ""
        advice = "free some space" if error.errno in NO_SPACE else "check the path and its permissions"
        print_error(f"{where}{error.strerror or error}; {advice} or choose another folder, "
                    f"then run again (a compare or tune run continues with --resume)")
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("mnistlab: interrupted; a compare or tune run continues with --resume", file=sys.stderr)
        return EXIT_INTERRUPTED


def figures_beside(args: argparse.Namespace, own_process: bool):
    """For the commands that write a report, in the console script on more than one core: a helper process that
    imports the plotting libraries while this one imports PyTorch, and draws figures beside this one
    (`reporting.drawing`). Started first, so its imports overlap the runtime's."""
    if not (own_process and args.command in DRAWS_REPORT and available_cores() > 1):
        return contextlib.nullcontext()
    from mnistlab.reporting.drawing import figure_helper

    return figure_helper()


def command_runtime(args: argparse.Namespace):
    """The runtime a command's numbers need (threads, deterministic kernels); none for the commands that only
    list or check files, which so start without importing PyTorch. The default thread count is one per core
    this process may use (affinity, cgroup quota), recorded with the run."""
    if args.command in LISTING:
        return contextlib.nullcontext()
    from mnistlab.training.runtime import configured_runtime

    return configured_runtime(args.threads or available_cores())


def choose_threads(args: argparse.Namespace) -> int | None:
    """`--threads auto` as a number: the idle cores now, shared among `--workers`, or the count a resumed run
    started with; always said, since the count is part of the run's numbers. None (the default) for the commands
    whose output no thread count changes."""
    if args.command in LISTING + ("compare-runs", "report", "card", "track"):
        return None
    if getattr(args, "ray", None):
        raise ConfigError("--threads auto measures this machine's idle cores, not a Ray cluster's; give --threads N "
                          "for each job")
    workers = getattr(args, "workers", None) or 1
    if workers < 1:
        return None  # refused with its own message when the command checks its placement
    started = resumed_threads(args)
    threads = started or auto_threads(share=workers)
    how = "the count this run started with" if started else "for this machine's load now"
    each = " per worker" if workers > 1 else ""
    print(f"mnistlab: --threads auto chose {threads} thread{'s' if threads != 1 else ''}{each}, {how}; "
          f"--threads {threads} repeats this run's numbers", file=sys.stderr)
    return threads


def resumed_threads(args: argparse.Namespace) -> int | None:
    """The threads per job recorded by the run `--resume` continues (a compare run's plan), if any: measuring the
    load again could choose another count, which the resumed run would refuse."""
    if not (getattr(args, "resume", False) and getattr(args, "out", None)):
        return None
    from mnistlab.runs.folder import read_plan

    threads = (read_plan(args.out) or {}).get("threads")
    return threads if isinstance(threads, int) and not isinstance(threads, bool) and threads >= 1 else None


def show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings as one line, `mnistlab: warning: ...`, without the source line Python adds."""
    print(f"mnistlab: warning: {' '.join(str(message).splitlines())}", file=sys.stderr)


def entry() -> None:
    """The console script: `main`, with Ctrl-C reported as "interrupted" and exit 130 at any moment, and
    OpenMP's passive wait policy (see `common.cpu`) unless the user chose one.

    Python turns SIGINT into KeyboardInterrupt wherever the main thread is, and
    drops it ("Exception ignored in ...") when that is a finaliser. The handler
    here also records the signal, so an interrupt swallowed that way, or one that
    arrives after the command finished, still ends the process with 130.
    """
    prefer_passive_waiting()  # before anything imports PyTorch: idle threads sleep instead of spinning
    interrupted = []

    def on_interrupt(signum, frame):
        if not interrupted:
            interrupted.append(signum)
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_interrupt)
    try:
        code = main(own_process=True)
        sys.stdout.flush()
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
    except BrokenPipeError:  # the output's reader went away while the last lines were flushed
        code = EXIT_BROKEN_PIPE
    if code == EXIT_BROKEN_PIPE:  # what is left unwritten goes nowhere, not into an error at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    if interrupted and code != EXIT_INTERRUPTED:
        print("mnistlab: interrupted; a compare or tune run continues with --resume", file=sys.stderr)
        code = EXIT_INTERRUPTED
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the exit code is decided; a late Ctrl-C cannot change it
    # A KeyboardInterrupt that ended code run from a string (`exec` of source text, as dataclasses and namedtuple
    # do while a module loads) leaves CPython's "Ctrl-C went unhandled" flag set even though it was caught here,
    # and under `python -m mnistlab` the interpreter then ends itself by SIGINT instead of with this code. Any
    # string evaluation that ends normally clears the flag.
    exec("None")
    sys.exit(code)
