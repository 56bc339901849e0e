"""``audiotagger tag``: AudioSet sound-event tags of audio/video files as subtitles, tables, plots, video."""

from __future__ import annotations

import argparse
import contextlib
import sys

from ..panns import params as pp
from ..params import (
    DEFAULT_LEFT,
    DEFAULT_OUTPUT_FORMATS,
    DEFAULT_RIGHT,
    DEFAULT_THRESHOLD,
    DEFAULT_TOP_K,
    ONNX_PANNS_BATCH,
    OUTPUT_FORMATS,
    TAG_BATCH_SIZE,
)
from ..yamnet import params as yp
from .archive import absolute, add_archive_arguments, check_plain, plain_inputs, run_archive_command
from .common import (
    add_engine_arguments,
    expand_inputs,
    nonnegative_int,
    plan_outputs,
    positive_float,
    positive_int,
    run_each,
    smooth_steps,
    smooth_value,
    str2bool,
    threshold_value,
)


def add_parser(sub) -> None:
    """Register the ``tag`` subcommand."""
    p = sub.add_parser(
        "tag",
        help="tag sound events in audio/video files (SRT, VTT, TSV, CSV, JSON, NPZ, TXT, PNG, MP4, HTML)",
        description="Tag the AudioSet sound events heard in each second of audio or video files and write "
                    "subtitles, tables, the probability matrix, plots or a subtitled copy of a video.",
        epilog="Display options (--threshold ... --per-second) not given on the command line take, with "
               "--from-probs, the values stored in the .npz, so the same files are re-rendered.")
    p.add_argument("inputs", nargs="*", metavar="IN", help="audio/video files, folders or glob patterns")
    p.add_argument("-o", "--output-dir", "--output_dir", dest="output_dir", default=".", metavar="DIR",
                   help="folder for the outputs <stem>.<ext> (default: .)")
    p.add_argument("-f", "--format", "--output-format", "--output_format", dest="formats", default=None,
                   metavar="FORMATS",
                   help=f"comma-separated output formats from {', '.join(OUTPUT_FORMATS)}, or all (default: "
                        f"{','.join(DEFAULT_OUTPUT_FORMATS)}); "
                        "mp4 writes <stem>.tagged.mp4; html an interactive page (and index.html for "
                        "several inputs)")
    add_model_options(p.add_argument_group("model"))
    d = p.add_argument_group("display")
    add_display_options(d)
    d.add_argument("--per-second", action="store_true", default=None,
                   help="one cue per second like the original (default: merge identical neighbours)")
    d.add_argument("--burn", action="store_true", help="mp4: draw the tags onto the frames (re-encodes)")
    d.add_argument("--embed-media", "--embed_media", dest="embed_media", action="store_true",
                   help="html: embed a compressed audio track in the page instead of linking to the media")
    b = p.add_argument_group("inputs and outputs")
    b.add_argument("--from-probs", action="append", default=None, metavar="NPZ",
                   help="re-render from a probability matrix saved with -f npz (no model is run)")
    b.add_argument("-r", "--recursive", action="store_true",
                   help="descend into folders; outputs mirror the input tree under -o")
    b.add_argument("--overwrite", action="store_true", help="replace existing outputs (default: skip them)")
    b.add_argument("--strict", action="store_true",
                   help="refuse damaged media (default: tag what decodes, with a warning giving the decoded "
                        "length against the stated duration)")
    b.add_argument("-q", "--quiet", action="store_true", help="no progress bars and no summaries")
    b.add_argument("--debug", action="store_true", help="print tracebacks of failed inputs")
    add_archive_arguments(p)
    p.set_defaults(func=run)


def add_model_options(m, *, compat_truncate: bool = True, resampler: bool = True) -> None:
    """The model options of ``tag`` (and ``listen``) on the argument group ``m``."""
    m.add_argument("--model", default=None, metavar="NAME|PATH",
                   help="classifier: 'default' (packaged) or a model file written by 'audiotagger train' "
                        "(a custom model trained with --audio loads its own backbone and writes its own "
                        "labels); or a PANNs model: panns-cnn14, panns-cnn10, panns-cnn6 or a .pth "
                        "checkpoint; or yamnet (or a yamnet.h5 / YAMNet .tflite file)")
    m.add_argument("--checkpoint", default=None, metavar="CKPT",
                   help="VGGish checkpoint (vggish_model.ckpt), the .pth of a panns-* model, or yamnet.h5")
    m.add_argument("--pca-params", "--pca_params", dest="pca_params", default=None, metavar="NPZ",
                   help="VGGish PCA parameters (vggish_pca_params.npz)")
    m.add_argument("--model-dir", "--model_dir", dest="model_dir", default=None, metavar="DIR",
                   help="model cache folder (default: $AUDIOTAGGER_HOME or ~/.cache/audiotagger)")
    m.add_argument("--offline", action="store_true", default=None, help="never download a model")
    m.add_argument("--left", type=nonnegative_int, default=DEFAULT_LEFT, metavar="N",
                   help=f"seconds of context before each second (default: {DEFAULT_LEFT})")
    m.add_argument("--right", type=nonnegative_int, default=DEFAULT_RIGHT, metavar="N",
                   help=f"seconds of context after each second (default: {DEFAULT_RIGHT})")
    if compat_truncate:
        m.add_argument("--compat-truncate", action="store_true",
                       help="VGGish: frame the audio as the old AudioTagger did (first 0.96 s of every "
                            "second but the last, hop 0.96 s)")
    m.add_argument("--sample-duration", "--sample_duration", dest="sample_duration", type=positive_float,
                   default=None, metavar="S",
                   help=f"PANNs: window length in seconds (default: {pp.DEFAULT_SAMPLE_DURATION}; at most "
                        f"{pp.MAX_SAMPLE_DURATION:g})")
    m.add_argument("--hop-duration", "--hop_duration", dest="hop_duration", type=positive_float,
                   default=None, metavar="S",
                   help=f"PANNs: seconds between windows (default: {pp.DEFAULT_HOP_DURATION}); YAMNet: "
                        f"seconds per row (default: {yp.DEFAULT_HOP_DURATION}, the maximum over the 0.48 s "
                        f"patches centred in it; {yp.NATIVE_HOP_DURATION} keeps the patches)")
    m.add_argument("--batch-size", type=positive_int, default=None, metavar="N",
                   help=f"windows per network call (default: {TAG_BATCH_SIZE} context windows; PANNs: "
                        f"{pp.DEFAULT_BATCH_SIZE} with --engine tf, {ONNX_PANNS_BATCH} with onnx; YAMNet: "
                        f"{yp.DEFAULT_BATCH_SIZE} patches)")
    add_engine_arguments(m, resampler=resampler)


def add_display_options(d) -> None:
    """The display options of ``tag`` (and ``listen``) on the argument group ``d``."""
    d.add_argument("--threshold", type=threshold_value, default=None, metavar="T",
                   help=f"lowest probability shown, 0 to 1, or auto: each class its own threshold, "
                        f"stored in the model (default: {DEFAULT_THRESHOLD})")
    d.add_argument("--top-k", "--top_k", dest="top_k", type=positive_int, default=None, metavar="K",
                   help=f"most tags per second, and lines per step in txt (default: {DEFAULT_TOP_K})")
    d.add_argument("--show-music-speech", "--show_music_speech", dest="show_music_speech", type=str2bool,
                   nargs="?", const=True, default=None, metavar="BOOL",
                   help="also show Speech and Music (hidden by default, as in the original)")
    d.add_argument("--exclude", action="append", default=None, metavar="CLASS",
                   help="hide a class (display name, mid or index); repeat for more")
    d.add_argument("--compat", action="store_true", default=None,
                   help="the original selection rule: 3 to 5 tags per second, Silence alone, '--' between "
                        "tags (ignores --top-k)")
    d.add_argument("--smooth", type=smooth_value, nargs="?", const=True, default=None, metavar="N",
                   help="causal moving average over N steps before selection (--smooth alone: "
                        f"--smooth-size, default {pp.DEFAULT_SMOOTH_SIZE}; --smooth no: off; default: off). "
                        "Same syntax as 'parse --smooth'")
    d.add_argument("--smooth-size", "--smooth_size", dest="smooth_size", type=positive_int, default=None,
                   metavar="N", help=f"steps averaged by --smooth (default: {pp.DEFAULT_SMOOTH_SIZE})")


def run(args: argparse.Namespace) -> int:
    """Run ``tag`` on every input; returns the exit code (0, 1 if some input failed)."""
    from ..errors import ParameterError
    from ..tag.result import load_result
    from ..tag.select import Selection
    from ..tag.tagger import (
        backend_display,
        backend_name,
        check_auto,
        check_backend_options,
        load_tagger,
        media_source,
        model_labels,
        model_thresholds,
        model_title,
        output_paths,
        resolve_display,
        result_labels,
        write_outputs,
    )
    from ..tag.windows import check_context
    from ..tag.writers import parse_formats

    formats = parse_formats(args.formats)
    from_probs = args.from_probs is not None
    check_plain(args)
    if from_probs and (args.inputs or args.input_list or args.ray is not None):
        raise ParameterError("--from-probs: give the .npz files to --from-probs, not as inputs "
                             "(and without --ray or --input-list)")
    backend = backend_name(args.model)
    from ..engine import check_engine

    check_engine(args.engine, args.precision)
    if args.resampler is not None:
        from ..audio import check_resampler

        check_resampler(args.resampler)
        if backend != "vggish":
            raise ParameterError(f"--resampler: only for the VGGish backend, not {backend} models")
    if args.ray is not None:
        return run_archive_command(args, _archive_spec(args, formats))
    args.inputs = plain_inputs(args)
    if not from_probs and not args.inputs:
        raise ParameterError("no input given (audio/video files, folders, patterns, or --from-probs NPZ)")
    check_context(args.left, args.right)
    check_backend_options(backend, compat_truncate=args.compat_truncate,
                          sample_duration=args.sample_duration, hop_duration=args.hop_duration)
    display = _display(args)
    if not from_probs:
        display = backend_display(display, backend)
    # usage errors (e.g. an unknown --exclude class) before any work; a custom model has its own classes,
    # and each re-rendered .npz its own (checked when it is read)
    options = resolve_display(display, labels=None if from_probs else model_labels(args.model),
                              check=not from_probs)
    if options.auto and not from_probs:      # --threshold auto: the model must store thresholds
        check_auto(options, model_thresholds(args.model), model_title(args.model))
    specs = args.from_probs if from_probs else args.inputs
    exts = frozenset({".npz"}) if from_probs else None
    items, problems = expand_inputs(specs, recursive=args.recursive,
                                    **({"extensions": exts} if exts else {}))
    if options.auto and from_probs:          # ... and so must every file re-rendered with it
        from ..tag.result import has_thresholds

        for item in items:
            if has_thresholds(item.path) is False:
                check_auto(options, None, item.path)

    plans = plan_outputs(items, lambda item: output_paths(item.path, args.output_dir, formats, item.rel_dir),
                         overwrite=args.overwrite)
    to_tag = [item for item in items if isinstance(plans[item], dict) and plans[item]]
    results = iter(())

    def work(item) -> bool:
        pending = plans[item]
        if isinstance(pending, BaseException):
            raise pending
        if not pending:
            if not args.quiet:
                from tqdm.auto import tqdm

                tqdm.write(f"audiotagger: {item.path}: outputs exist, skipping (use --overwrite to redo)",
                           file=sys.stderr)
            return False
        source = None
        if from_probs:
            result, stored = load_result(item.path)
            sel_options = resolve_display(display, stored, result_labels(result))
            source = media_source(result)
        else:
            sel_options = options
            path, result = next(results)
            if path != item.path:
                raise RuntimeError(f"tagger returned {path} for {item.path}")
            if isinstance(result, BaseException):
                raise result
        sel = Selection(result, sel_options)
        write_outputs(sel, pending, overwrite=True, burn=args.burn, source=source,
                      embed_media=args.embed_media, progress=not args.quiet)
        if not args.quiet:
            from tqdm.auto import tqdm

            tqdm.write(sel.summary_text(), file=sys.stdout)
            sys.stdout.flush()
        return True

    with contextlib.suppress(AttributeError):
        sys.stdout.reconfigure(errors="replace")
    if not from_probs and to_tag:
        tagger = load_tagger(args.model, checkpoint=args.checkpoint, pca_params=args.pca_params,
                             model_dir=args.model_dir, offline=args.offline, batch_size=args.batch_size,
                             engine=args.engine, precision=args.precision,
                             **({"resampler": args.resampler} if args.resampler else {}))
        # one stream over every input to tag; each file's result comes as soon as that file is done
        results = tagger.iter_tag([item.path for item in to_tag], left=args.left, right=args.right,
                                  sample_duration=args.sample_duration, hop_duration=args.hop_duration,
                                  compat_truncate=args.compat_truncate, strict=args.strict,
                                  progress=not args.quiet)
    report = run_each(items, work, problems=problems, quiet=args.quiet, debug=args.debug, desc="tag")
    if "html" in formats and len(items) > 1:
        from ..tag.report import write_index

        write_index(args.output_dir)
    return report.exit_code


def _display(args: argparse.Namespace) -> dict:
    """The display flags as :func:`audiotagger.tag.tagger.resolve_display` takes them."""
    return {"threshold": args.threshold, "top_k": args.top_k, "show_music_speech": args.show_music_speech,
            "exclude": None if args.exclude is None else tuple(args.exclude), "compat": args.compat,
            "smooth": smooth_steps(args.smooth, args.smooth_size, pp.DEFAULT_SMOOTH_SIZE),
            "per_second": args.per_second}


def _archive_spec(args: argparse.Namespace, formats) -> dict:
    """The ``--ray`` job of these arguments (model paths absolute: workers may run anywhere)."""
    return {"command": "tag", "model": absolute(args.model), "formats": list(formats), "burn": args.burn,
            "display": _display(args),
            "backend": {"checkpoint": absolute(args.checkpoint), "pca_params": absolute(args.pca_params),
                        "model_dir": absolute(args.model_dir),
                        "offline": args.offline, "batch_size": args.batch_size, "engine": args.engine,
                        "precision": args.precision,
                        **({"resampler": args.resampler} if args.resampler else {})},
            "options": {"left": args.left, "right": args.right, "sample_duration": args.sample_duration,
                        "hop_duration": args.hop_duration, "compat_truncate": args.compat_truncate,
                        "strict": args.strict}}
