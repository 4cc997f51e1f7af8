"""The work of `pod-watcher inject`, behind its argument parser (watcher.inject.command)."""

import argparse
from pathlib import Path
from typing import TextIO

from watcher import exitcodes
from watcher.inject.documents import inject_documents, uninject_documents
from watcher.inject.pieces import InjectError, Obj, Options
from watcher.inject.yamlio import dump, load


def options_from(args: argparse.Namespace) -> Options:
    return Options(
        image=args.image,
        config_map=None if args.config_map == "none" else args.config_map,
        api=args.api,
        service_account=args.service_account,
        gpu=args.gpu,
        dcgm_exporter_url=args.dcgm_exporter_url,
        containers=tuple(args.container),
    )


def main(args: argparse.Namespace, stdin: TextIO, stdout: TextIO, stderr: TextIO) -> int:
    """Exit 0 with the manifests on stdout; 2 with the reason, and nothing on stdout."""
    try:
        documents = _read(args.files, stdin)
        options = options_from(args)
        if args.uninject:
            result = uninject_documents(documents, options)
        else:
            result = inject_documents(documents, options)
    except InjectError as exc:
        print(f"pod-watcher inject: {exc}", file=stderr)
        return exitcodes.CONFIG_ERROR
    if documents:
        stdout.write(dump(result.documents))
    for line in [*result.notes, *result.hints()]:
        print(f"pod-watcher inject: {line}", file=stderr)
    return exitcodes.CLEAN


def _read(files: list[Path], stdin: TextIO) -> list[Obj]:
    if not files:
        return load(stdin.read(), "stdin")
    documents = []
    for file in files:
        if str(file) == "-":
            documents += load(stdin.read(), "stdin")
            continue
        try:
            text = file.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InjectError(f"{file}: cannot read it: {exc}") from None
        documents += load(text, str(file))
    return documents
