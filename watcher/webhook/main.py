"""The work of `pod-watcher webhook`, behind its argument parser (watcher.webhook.command)."""

import argparse
import asyncio
import logging
import signal
import sys

from watcher import exitcodes
from watcher.inject.cli import options_from
from watcher.inject.documents import inject_documents
from watcher.inject.pieces import InjectError
from watcher.reporting.logs import setup_logging
from watcher.webhook.server import serve
from watcher.webhook.tls import ReloadingContext, TlsError

log = logging.getLogger("watcher.webhook")


def main(args: argparse.Namespace) -> int:
    """Exit 0 after SIGTERM; 2 for bad options or TLS files, before serving."""
    setup_logging(args.log_format, "INFO")
    try:
        options = options_from(args)
        inject_documents([], options)  # refuses a bad --gpu before the first Pod
        tls = ReloadingContext(args.tls_cert, args.tls_key)
    except (InjectError, TlsError) as exc:
        print(f"pod-watcher webhook: {exc}", file=sys.stderr)
        return exitcodes.CONFIG_ERROR
    try:
        asyncio.run(_serve(args, tls))
    except OSError as exc:
        print(f"pod-watcher webhook: cannot listen on {args.host}:{args.port}: {exc}",
              file=sys.stderr)  # fmt: skip
        return exitcodes.CONFIG_ERROR
    return exitcodes.CLEAN


async def _serve(args: argparse.Namespace, tls: ReloadingContext) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await serve(options_from(args), args.host, args.port, tls.context, stop)
