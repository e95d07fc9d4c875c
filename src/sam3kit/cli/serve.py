"""``sam3kit serve``: the local server (FastAPI under uvicorn) and its page, ``sam3kit.server``.

Listens on 127.0.0.1 by default; any other ``--host`` needs ``--token`` (or ``SAM3KIT_SERVER_TOKEN``). The port is
bound before the model is loaded, so a port in use is reported at once; ``--port 0`` takes a free port, and the
line printed once the server is ready names the address. Without the ``server`` extra installed the command exits
2 naming it (``pip install 'sam3kit[server]'``).
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import sys

from .model_args import add_model_argument, add_runtime_arguments, apply_threads, load_model
from .device import resolve_device

TOKEN_ENV = "SAM3KIT_SERVER_TOKEN"
_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "kib": 2**10, "m": 10**6, "mb": 10**6, "mib": 2**20,
          "g": 10**9, "gb": 10**9, "gib": 2**30, "t": 10**12, "tb": 10**12, "tib": 2**40}

EXAMPLES = """examples:
  sam3kit serve --model facebook/sam3                       # http://127.0.0.1:8000/ (page), API under /v1
  sam3kit serve --model ./sam3 --port 9000 --max-images 8 --max-cache-bytes 1GiB
  sam3kit serve --model ./sam3 --host 0.0.0.0 --token "$(openssl rand -hex 16)"   # reachable from other machines
"""


def parse_bytes(text: str) -> int:
    """``123``, ``512MB``, ``2GiB``, ``1.5G`` -> bytes (an int >= 1)."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", text)
    if m is None or m.group(2).lower() not in _UNITS:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size: give bytes, or a number with KB, MB, GB, KiB, "
                                         "MiB, GiB")
    v = int(float(m.group(1)) * _UNITS[m.group(2).lower()])
    if v < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give at least 1 byte")
    return v


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give 1 or more")
    return v


def _port(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= v <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r}: a port is 0..65535 (0: any free port)")
    return v


def add_parser(sub, common, formatter) -> None:
    from ..server.settings import ServerSettings

    d = ServerSettings()
    p = sub.add_parser(
        "serve", parents=[common], formatter_class=formatter, epilog=EXAMPLES,
        help="serve the model over HTTP, with a page for interactive segmentation",
        description="Start a local HTTP server (FastAPI under uvicorn): the API under /v1 (images: upload, segment "
                    "by text or exemplar boxes, predict from clicks and boxes; videos: prompts, concepts, "
                    "propagation streamed as NDJSON), its schema at /openapi.json, and a page at / for interactive "
                    "segmentation. Needs the server extra: pip install 'sam3kit[server]'.")
    add_model_argument(p)
    n = p.add_argument_group("network")
    n.add_argument("--host", default=d.host, help="address to listen on; anything but loopback needs --token")
    n.add_argument("--port", type=_port, default=d.port, help="port to listen on (0: any free port)")
    n.add_argument("--token", default=os.environ.get(TOKEN_ENV), metavar="T",
                   help=f"require 'Authorization: Bearer T' on the API (default: ${TOKEN_ENV}, else none)")
    n.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                   help="a host name clients may use besides IP addresses and localhost (repeatable; default: none)")
    n.add_argument("--cors-origin", action="append", default=[], metavar="URL",
                   help="let pages from this origin (scheme://host:port) call the API (repeatable; default: none)")
    lim = p.add_argument_group("limits")
    lim.add_argument("--max-images", type=_positive_int, default=d.max_images, metavar="N",
                     help="images held; the least recently used is evicted beyond")
    lim.add_argument("--max-cache-bytes", type=parse_bytes, default=d.max_cache_bytes, metavar="SIZE",
                     help="bytes of image encodings held (about 150MB per image at full size in fp32)")
    lim.add_argument("--max-image-pixels", type=_positive_int, default=d.max_image_pixels, metavar="N",
                     help="largest image or video frame, in pixels")
    lim.add_argument("--max-sessions", type=_positive_int, default=d.max_sessions, metavar="N",
                     help="video sessions held")
    lim.add_argument("--max-body-bytes", type=parse_bytes, default=d.max_body_bytes, metavar="SIZE",
                     help="largest request body (an image upload included)")
    lim.add_argument("--max-video-bytes", type=parse_bytes, default=d.max_video_bytes, metavar="SIZE",
                     help="largest video upload")
    lim.add_argument("--encoding-wait", type=float, default=d.encoding_wait_s, metavar="S",
                     help="seconds a prompt waits for an image still encoding before answering 409")
    p.add_argument("-q", "--quiet", action="store_true", help="no access log, only warnings and errors")
    add_runtime_arguments(p, cache=False)
    p.set_defaults(run=run)


def settings_from_args(args: argparse.Namespace):
    """The ``ServerSettings`` of the flags (``InputError`` for a combination it refuses)."""
    from ..server.settings import ServerSettings

    return ServerSettings(host=args.host, port=args.port, token=args.token or None,
                          allowed_hosts=tuple(args.allow_host), cors_origins=tuple(args.cors_origin),
                          max_body_bytes=args.max_body_bytes, max_video_bytes=args.max_video_bytes,
                          max_image_pixels=args.max_image_pixels, max_images=args.max_images,
                          max_cache_bytes=args.max_cache_bytes, max_sessions=args.max_sessions,
                          encoding_wait_s=args.encoding_wait)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host``:``port`` (``OutputError`` when the address is taken or not this machine's)."""
    from ..errors import OutputError

    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as e:
        sock.close()
        raise OutputError(f"cannot listen on {host}:{port}: {e.strerror or e} (another server there? try another "
                          "--port, or --port 0 for any free one)") from e
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def run(args: argparse.Namespace) -> int:
    from ..server.extra import require_server_extra

    require_server_extra()
    import uvicorn

    from ..server import create_app
    from .exit_codes import PROG
    from .report import Reporter

    settings = settings_from_args(args)
    apply_threads(args.threads)
    sock = bind(settings.host, settings.port)
    try:
        with Reporter(0, enabled=False if args.quiet else None) as rep:
            model = load_model(args, resolve_device(args.device), rep)
        app = create_app(model, settings, model_source=args.model)
        host, port = sock.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        url = f"http://{shown}:{port}/"
        page = f"; the page with the token: {url}#token={settings.token}" if settings.token else ""
        print(f"{PROG}: serving {args.model} at {url} (the page; API under /v1, schema /openapi.json){page}; "
              "Ctrl-C stops", flush=True)
        config = uvicorn.Config(app, log_level="warning" if args.quiet else "info", access_log=not args.quiet,
                                timeout_graceful_shutdown=5, server_header=False)
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
    sys.stdout.flush()
    return 0
