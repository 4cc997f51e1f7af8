"""`pod-watcher webhook`: the subcommand's arguments, and its run. Only argparse is imported
here: the parser is built on every start of the watcher."""

import argparse
from pathlib import Path

from watcher.inject.command import add_options


def add_parser(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    webhook = commands.add_parser(
        "webhook",
        help="serve inject as a mutating admission webhook over HTTPS",
        description="Answer AdmissionReviews on POST /mutate (and GET /healthz) over HTTPS: "
        "each Pod the MutatingWebhookConfiguration selects is injected as `pod-watcher "
        "inject` would, with the same options. A Pod inject cannot wire is admitted "
        "unchanged, with the reason as a warning. Runs until SIGTERM.",
    )
    webhook.add_argument("--tls-cert", type=Path, required=True, metavar="FILE")
    webhook.add_argument("--tls-key", type=Path, required=True, metavar="FILE")
    webhook.add_argument("--host", default="0.0.0.0", help="the address to listen on")
    webhook.add_argument("--port", type=int, default=8443)
    webhook.add_argument("--log-format", choices=("json", "text"), default="json")
    add_options(webhook)
    webhook.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from watcher.webhook.main import main

    return main(args)
