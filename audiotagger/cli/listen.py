"""``audiotagger listen``: tag a microphone, a network stream or stdin live, one line per second."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
import time
import warnings

from .common import EXIT_FAILED, EXIT_OK, error_line, positive_float, positive_int, smooth_steps
from .tag import add_display_options, add_model_options


def add_parser(sub) -> None:
    """Register the ``listen`` subcommand."""
    p = sub.add_parser(
        "listen", help="tag a microphone, a network stream (http, rtsp, rtmp, udp, srt, HLS) or stdin live",
        description="Tag the sound events of a live source one second at a time, with the models and "
                    "options of 'tag': each second is printed as soon as its right context has arrived.",
        epilog="Ctrl-C (or SIGTERM) and --until end the run cleanly: the growing files are complete and the "
               ".npz is written; the exit code is 0. Re-render the .npz with 'audiotagger tag --from-probs'.")
    p.add_argument("source", nargs="?", default=None, metavar="SOURCE",
                   help="a stream URL (http(s)://, rtsp://, rtmp://, udp://, srt://, HLS .m3u8), "
                        "- for stdin; "
                        "default: the microphone")
    i = p.add_argument_group("input")
    i.add_argument("--device", default=None, metavar="NAME",
                   help="capture device (default: the system default; FORMAT:NAME picks the ffmpeg format, "
                        "e.g. alsa:hw:1)")
    i.add_argument("--list-devices", action="store_true", help="list the capture devices and exit")
    i.add_argument("--format", default=None, metavar="FMT",
                   help="ffmpeg input format of SOURCE (e.g. s16le for raw PCM, mpegts, wav); "
                        "default: detected")
    i.add_argument("--rate", type=positive_int, default=None, metavar="HZ",
                   help="sample rate of a raw --format (default: 16000)")
    i.add_argument("--channels", type=positive_int, default=None, metavar="N",
                   help="channels of a raw --format (default: 1)")
    i.add_argument("--reconnect", action=argparse.BooleanOptionalAction, default=None,
                   help="reopen the source with backoff when it stalls or drops (default: on for URLs)")
    i.add_argument("--open-timeout", type=positive_float, default=None, metavar="S",
                   help="seconds for the source to deliver audio before it counts as not answering "
                        "(default: 20)")
    i.add_argument("--stall-timeout", type=positive_float, default=None, metavar="S",
                   help="seconds without audio that count as a stall (default: 5)")
    add_model_options(p.add_argument_group("model"), compat_truncate=False, resampler=False)
    add_display_options(p.add_argument_group("display"))
    o = p.add_argument_group("outputs")
    o.add_argument("--jsonl", action="store_true",
                   help="one JSON object per second on stdout (time, end, wall, tags with label/mid/score)")
    o.add_argument("-o", "--output-dir", dest="output_dir", default=None, metavar="DIR",
                   help="write growing <name>.srt and <name>.tsv (one cue per second, flushed at once) and, "
                        "on stop, <name>.npz")
    o.add_argument("--name", default=None, metavar="STEM",
                   help="file name of the -o outputs (default: listen-<UTC start time>)")
    o.add_argument("--overwrite", action="store_true", help="replace existing -o outputs of the same name")
    o.add_argument("--until", type=positive_float, default=None, metavar="SECONDS",
                   help="stop after this many seconds")
    o.add_argument("-q", "--quiet", action="store_true", help="no per-second lines on stdout")
    a = p.add_argument_group("alerts")
    a.add_argument("--alert", action="append", default=[], metavar="CLASS[=T]",
                   help="print an alert on stderr when CLASS reaches T (a number, or auto: the class's own "
                        "threshold stored in the model; default: --threshold); repeatable")
    a.add_argument("--on", action="append", default=[], metavar="CLASS[=T]",
                   help="with --exec: run a command when CLASS reaches T; repeatable (pairs in order)")
    a.add_argument("--exec", action="append", default=[], dest="exec_", metavar="CMD",
                   help="shell command for the --on before it; AUDIOTAGGER_CLASS, _MID, _SCORE, _TIME and "
                        "_WALL are set")
    a.add_argument("--hold-off", type=positive_float, default=None, metavar="S",
                   help="seconds before the same alert can fire again (default: 10)")
    p.set_defaults(func=run)


def _alert_rules(args, threshold: float) -> list:
    from ..errors import ParameterError
    from ..live.alerts import parse_rule

    if len(args.on) != len(args.exec_):
        raise ParameterError(f"--on/--exec: give one --exec per --on (got {len(args.on)} --on and "
                             f"{len(args.exec_)} --exec)")
    return ([parse_rule(spec, threshold) for spec in args.alert]
            + [parse_rule(spec, threshold, cmd) for spec, cmd in zip(args.on, args.exec_, strict=True)])


def run(args: argparse.Namespace) -> int:
    """Run ``listen`` until the source ends, ``--until``, Ctrl-C or SIGTERM; returns the exit code."""
    from ..errors import AudioTaggerError, ParameterError
    from ..live import session
    from ..live.alerts import DEFAULT_HOLD_OFF, run_command
    from ..live.outputs import LiveFiles, gap_line, json_gap_line, json_line, text_line
    from ..live.sources import list_devices

    if args.list_devices:
        if args.source is not None:
            raise ParameterError("--list-devices: lists the microphones; give no SOURCE")
        sys.stdout.write(list_devices())
        return EXIT_OK
    if args.name is not None and args.output_dir is None:
        raise ParameterError("--name: names the -o outputs; give -o DIR too")
    from ..panns import params as pp
    from ..params import DEFAULT_THRESHOLD

    rules = _alert_rules(args, DEFAULT_THRESHOLD if args.threshold is None else args.threshold)
    stop = threading.Event()
    listener = session.Listener(
        args.source, device=args.device, format=args.format, rate=args.rate, channels=args.channels,
        model=args.model, checkpoint=args.checkpoint, pca_params=args.pca_params, model_dir=args.model_dir,
        offline=args.offline, batch_size=args.batch_size, engine=args.engine, precision=args.precision,
        left=args.left, right=args.right,
        sample_duration=args.sample_duration, hop_duration=args.hop_duration, threshold=args.threshold,
        top_k=args.top_k, show_music_speech=args.show_music_speech, exclude=args.exclude,
        compat=args.compat, smooth=smooth_steps(args.smooth, args.smooth_size, pp.DEFAULT_SMOOTH_SIZE),
        until=args.until, reconnect=args.reconnect,
        open_timeout=args.open_timeout or session.OPEN_TIMEOUT,
        stall_timeout=args.stall_timeout or session.STALL_TIMEOUT,
        alerts=rules, hold_off=DEFAULT_HOLD_OFF if args.hold_off is None else args.hold_off, stop=stop)
    stem = args.name or time.strftime("listen-%Y%m%dT%H%M%SZ", time.gmtime())
    files = npz_path = None
    if args.output_dir is not None:
        from pathlib import Path

        npz_path = Path(args.output_dir) / f"{stem}.npz"
        if npz_path.exists() and not args.overwrite:
            raise ParameterError(f"{npz_path}: exists (use --overwrite or another --name)")
        try:
            files = LiveFiles(args.output_dir, stem, overwrite=args.overwrite, compat=listener.options.compat)
        except FileExistsError as exc:
            raise ParameterError(f"{exc.filename}: exists (use --overwrite or another --name)") from None
        except OSError as exc:
            raise AudioTaggerError(f"{args.output_dir}: cannot write outputs ({exc.strerror})") from None

    def on_signal(signum, frame) -> None:
        if stop.is_set():               # a second Ctrl-C: stop at once
            raise KeyboardInterrupt
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    code = EXIT_OK
    children = []
    try:
        with warnings.catch_warnings():
            with contextlib.suppress(AttributeError):
                sys.stdout.reconfigure(errors="replace", line_buffering=True)
            listener.load()
            print(f"audiotagger: listening to {listener.source.name} (model {listener.tagger.model_name}); "
                  "Ctrl-C to stop", file=sys.stderr, flush=True)

            def show_gap(gap) -> None:
                if not args.quiet:
                    started = listener.started
                    print(json_gap_line(gap, started) if args.jsonl else gap_line(gap, started))

            try:
                for res in listener:
                    if res.gap is not None:
                        show_gap(res.gap)
                    if not args.quiet:
                        print(json_line(res) if args.jsonl else text_line(res, listener.options.separator))
                    for alert in res.alerts:
                        if alert.rule.command:
                            children.append(run_command(alert))
                        else:
                            print(f"audiotagger: alert: {session.iso_time(alert.wall)} {alert.label} "
                                  f"{alert.score:.2f} (>= {alert.threshold:g})", file=sys.stderr,
                                  flush=True)
                    if files is not None:
                        try:
                            files.add(res)
                        except OSError as exc:
                            print(error_line(OSError(f"{exc.filename}: {exc.strerror}; stopped (the files "
                                                     "hold every second up to here)")), file=sys.stderr)
                            code = EXIT_FAILED
                            files.close()
                            files = None
                            stop.set()
                    children = [c for c in children if c.poll() is None]
                if listener.trailing_gap is not None:     # stopped while the source was away
                    show_gap(listener.trailing_gap)
                    if files is not None:
                        files.add_gap(listener.trailing_gap)
            finally:
                if files is not None:
                    files.close()
            if npz_path is not None:
                code = max(code, _write_npz(listener, npz_path, stem))
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for child in children:
            with contextlib.suppress(Exception):
                child.wait(timeout=5)
    return code


def _write_npz(listener, path, stem: str) -> int:
    """Save the run's probability matrix as ``tag -f npz`` does; returns the exit code."""
    from ..tag.select import Selection
    from ..tag.writers import get_writer

    if not listener.rows:
        print(f"audiotagger: {path}: not written (no complete second)", file=sys.stderr)
        return EXIT_OK
    options = {**listener.options.to_dict(), "per_second": True}
    from ..tag.select import DisplayOptions

    try:
        get_writer("npz").write(Selection(listener.result(stem), DisplayOptions.from_dict(options)), path)
    except OSError as exc:
        print(error_line(OSError(f"{path}: {exc.strerror or exc}")), file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK
