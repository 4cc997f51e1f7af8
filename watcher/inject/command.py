"""`pod-watcher inject`: the subcommand's arguments, and its run. Only argparse is imported
here: the parser is built on every start of the watcher."""

import argparse
import sys
from pathlib import Path

GPU_CHOICES = ("auto", "relay", "dcgm", "none")
"""Kept equal to watcher.inject.gpu.WIRINGS by a test (importing it here would cost)."""


def add_parser(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    inject = commands.add_parser(
        "inject",
        help="add pod-watcher to Pod, Job, JobSet, PyTorchJob and TrainJob manifests",
        description="Read manifests (files, or stdin when none or '-') and write them to stdout "
        "with pod-watcher added: the sidecar and its restart rule, the launcher in front of "
        "the trainer's command, the volumes, the security context and the API token. A "
        "second run changes nothing; --uninject takes it all out again.",
    )
    inject.add_argument("files", nargs="*", type=Path, metavar="FILE")
    inject.add_argument("--uninject", action="store_true", help="take pod-watcher out")
    add_options(inject)
    inject.set_defaults(handler=run)


def add_options(parser: argparse.ArgumentParser) -> None:
    """The options inject and the webhook share (watcher.inject.cli.options_from)."""
    parser.add_argument(
        "--container",
        action="append",
        default=[],
        metavar="NAME",
        help="the trainer's container (repeatable: the first present wins); default: the "
        "kind's (pytorch, node), the Pod's default-container annotation, or the only one",
    )
    parser.add_argument("--image", help="the watcher's image (default pod-watcher:dev)")
    parser.add_argument(
        "--config-map",
        default="pod-watcher-config",
        metavar="NAME",
        help="the ConfigMap holding watcher.yaml (manifests/configmap-rules.yaml); "
        "'none' for no config file",
    )
    parser.add_argument("--gpu", choices=GPU_CHOICES, default="auto", help="the GPU wiring")
    parser.add_argument(
        "--dcgm-exporter-url",
        metavar="URL",
        help="dcgm-exporter for --gpu dcgm (default http://$(NODE_IP):9400/metrics)",
    )
    parser.add_argument(
        "--api",
        choices=("service-account", "none"),
        default="service-account",
        help="service-account: the Pod runs as --service-account, whose token is projected "
        "into the watcher alone; none: no API access (Events, eviction off)",
    )
    parser.add_argument("--service-account", default="pod-watcher", metavar="NAME")


def run(args: argparse.Namespace) -> int:
    from watcher.inject.cli import main

    return main(args, sys.stdin, sys.stdout, sys.stderr)
