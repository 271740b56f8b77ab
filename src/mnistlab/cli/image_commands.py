"""The commands that read a user's images or serve them: predict (and predict --number), explain, serve."""

from __future__ import annotations

import argparse
import json
import sys

from mnistlab.cli.commands import EXIT_USER_ERROR, checkpoint_arguments, print_error
from mnistlab.common.extras import require_extra


def run_predict_command(args: argparse.Namespace) -> int:
    from mnistlab.vision.loading import load_model
    from mnistlab.vision.predict import format_table, predict_files, prepare_input_folder, save_inputs

    if args.number:
        return run_number_command(args)
    if args.show_input:
        prepare_input_folder(args.show_input, args.images, force=args.force)  # a bad folder: an error before any work
    loaded = load_model(args.checkpoint, device=args.device or "cpu", trust_code=args.trust_code)
    if loaded.note():
        print(f"mnistlab: note: {loaded.note()}", file=sys.stderr)
    results = predict_files(loaded, args.images, top_k=args.top_k)
    for result in results:
        if result.error:
            print_error(result.error)
    print(json.dumps([result.to_dict() for result in results], indent=2) if args.json else format_table(results))
    if args.show_input:
        save_inputs(results, args.show_input)  # after printing: a full disk loses no prediction
    return EXIT_USER_ERROR if any(result.error for result in results) else 0


def run_number_command(args: argparse.Namespace) -> int:
    """`predict --number`: each image read as one number, left to right."""
    from mnistlab.common.errors import PreprocessError
    from mnistlab.vision.numbers import check_reads_digits, read_number
    from mnistlab.vision.loading import load_model
    from mnistlab.vision.predict import expand_image_paths

    loaded = load_model(args.checkpoint, device=args.device or "cpu", trust_code=args.trust_code)
    check_reads_digits(loaded)  # before any image is read
    results, failed = [], False
    for source, problem in expand_image_paths(args.images):
        try:
            if problem:
                raise PreprocessError(problem)
            results.append({"image": source, **read_number(loaded, source)})
        except PreprocessError as error:
            message = str(error) if problem else f"{source}: {error}"
            print_error(message)
            results.append({"image": source, "error": message})
            failed = True
    if args.json:
        print(json.dumps(results, indent=2))
    for result in results if not args.json else []:
        if "number" in result:
            boxes = "  ".join(f"{item['digit']} {max(item['probabilities']):.0%}"
                              f"{' (not sure)' if item.get('not_sure') else ''} at {tuple(item['box'])}"
                              for item in result["digits"])
            print(f"{result['image']}: {result['number']}   ({boxes})")
    return EXIT_USER_ERROR if failed else 0


def run_explain_command(args: argparse.Namespace) -> int:
    checkpoint_arguments(args)  # the explain extra first (COMMAND_EXTRAS), then the checkpoint file
    from mnistlab.explain.files import check_figure_paths, explain_files
    from mnistlab.vision.loading import load_model

    check_figure_paths(args.images, args.out, args.force)  # a bad --out: an error before the checkpoint loads
    loaded = load_model(args.checkpoint, device=args.device or "cpu", trust_code=args.trust_code)
    if loaded.note():
        print(f"mnistlab: note: {loaded.note()}", file=sys.stderr)
    results = explain_files(loaded, args.images, args.out, force=args.force)
    for result in results:
        if result.prediction.error:
            print_error(result.prediction.error)
    if args.json:
        print(json.dumps([result.to_dict() for result in results]))
    else:
        for result in results:
            if result.figure:
                name, probability = result.prediction.top[0]
                print(f"{result.prediction.source}: {name} ({100 * probability:.1f}%)  -> {result.figure}")
    return EXIT_USER_ERROR if any(result.prediction.error for result in results) else 0


def run_serve_command(args: argparse.Namespace) -> int:
    require_extra("serve", "mnistlab serve")
    from mnistlab.serve.app import run_server

    run_server(args.checkpoints, host=args.host, port=args.port, allowed_hosts=args.allowed_host,
               device=args.device or "cpu", trust_code=args.trust_code)
    return 0
