"""``audiotagger models``: list, download, import, locate, verify and clean the model files in the cache."""

from __future__ import annotations

import argparse
import json
import sys

from .common import EXIT_FAILED, EXIT_OK, error_line


def add_parser(sub) -> None:
    """Register the ``models`` subcommand and its actions."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--model-dir", "--model_dir", dest="model_dir", metavar="DIR",
                        help="model cache folder (default: $AUDIOTAGGER_HOME, else "
                             "$XDG_CACHE_HOME/audiotagger, else ~/.cache/audiotagger)")
    p = sub.add_parser(
        "models", help="list, download, import and verify model files",
        description="Manage the model cache. Models are downloaded on first use by the other commands; "
                    "use 'download' to fetch them ahead of time, or 'import' on a machine without "
                    "network (set AUDIOTAGGER_OFFLINE=1 or pass --offline to never touch the network). "
                    "AUDIOTAGGER_MIRROR=URL fetches every file from URL/<file name> instead of its "
                    "official address; the standard http(s)_proxy variables are honoured.")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    a = actions.add_parser("list", parents=[common], help="known models, what is cached, and where")
    a.add_argument("-v", "--verbose", action="store_true",
                   help="also print each model's URL, who published its checksum, and what is wrong")
    a.add_argument("--json", action="store_true", help="print the same information as JSON")
    a.add_argument("--workspace", metavar="W",
                   help="also list the models trained in this workspace (best.npz and averaged.npz of "
                        "every run; custom models with their backbone and labels)")
    a.set_defaults(action_func=run_list)

    a = actions.add_parser("info", help="describe a model file: its classes, backbone and architecture")
    a.add_argument("paths", nargs="+", metavar="MODEL", help="classifier .npz files")
    a.add_argument("--json", action="store_true", help="print the same information as JSON")
    a.set_defaults(action_func=run_info)

    a = actions.add_parser("download", parents=[common],
                           help="download models into the cache and verify them")
    a.add_argument("names", nargs="+", metavar="NAME", help="model names (see 'list'), or 'all'")
    a.add_argument("--force", action="store_true", help="download again even if a verified copy is cached")
    a.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    a.set_defaults(action_func=run_download)

    a = actions.add_parser("import", parents=[common],
                           help="verify a file downloaded elsewhere and copy it into the cache")
    a.add_argument("path", metavar="PATH", help="the model file")
    a.add_argument("--name", help="model name (default: guessed from the file name or its checksum)")
    a.set_defaults(action_func=run_import)

    a = actions.add_parser("path", parents=[common], help="print where a model file is (exit 1 if missing)")
    a.add_argument("name", metavar="NAME")
    a.set_defaults(action_func=run_path)

    a = actions.add_parser("verify", parents=[common],
                           help="check cached files completely (published checksum, every checksum the "
                                "format carries, every tensor read)")
    a.add_argument("names", nargs="*", metavar="NAME", help="model names (default: every cached model)")
    a.set_defaults(action_func=run_verify)

    a = actions.add_parser("clean", parents=[common],
                           help="remove converted weights and leftovers of killed runs (models are kept)")
    a.add_argument("--partial", action="store_true",
                   help="also remove interrupted downloads (otherwise kept, to be resumed)")
    a.add_argument("-n", "--dry-run", action="store_true", help="only list what would be removed")
    a.set_defaults(action_func=run_clean)

    p.set_defaults(func=run)


def run(args) -> int:
    """Run ``models`` (dispatches to the action)."""
    return args.action_func(args)


def _size(n: int | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return ""  # unreachable


def run_list(args) -> int:
    """Print one row per known model: name, file, size, state, checksum; then the cache folder."""
    from .. import hub

    statuses = hub.list_models(model_dir=args.model_dir)
    derived, partial = hub.other_files(model_dir=args.model_dir)
    trained = _trained(args.workspace)
    if args.json:
        print(json.dumps({
            "cache": str(hub.cache_dir(args.model_dir)), "cache_source": hub.cache_source(args.model_dir),
            "offline": hub.is_offline(),
            "models": [{"name": st.info.name, "file": st.info.filename, "path": str(st.path),
                        "state": st.state, "size": st.size, "expected_size": st.info.size,
                        "kind": st.info.kind, "checksum": st.info.checksum, "sha256": st.info.sha256,
                        "md5": st.info.md5,
                        "checksum_source": st.info.checksum_source, "url": hub.url_for(st.info) or None,
                        "problem": st.problem} for st in statuses],
            "derived_files": [str(p) for p in derived], "partial_downloads": [str(p) for p in partial],
            **({"trained": trained} if args.workspace is not None else {}),
        }, indent=2))
        return EXIT_OK
    rows = [("NAME", "FILE", "SIZE", "STATE", "CHECKSUM")]
    details = [[]]
    for st in statuses:
        info = st.info
        size = _size(st.size if st.size is not None else info.size)
        check = info.checksum if info.kind != "packaged" else "-"
        if info.checksum == "none" and info.kind != "packaged":
            check = "none published (" + ("size+" if info.size else "") + "structure checked)"
        rows.append((info.name, info.filename, size, st.state, check))
        details.append([f"{info.description}", f"path: {st.path}"]
                       + ([f"url: {hub.url_for(info)}"] if info.url else [])
                       + [f"checksum: {info.checksum_source}"]
                       + ([f"problem: {st.problem}"] if st.problem and st.state == "corrupt" else []))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for row, lines in zip(rows, details, strict=True):
        print("  ".join(c.ljust(w) for c, w in zip(row[:-1], widths, strict=True)) + "  " + row[-1])
        if args.verbose:
            for line in lines:
                print(f"    {line}")
    for what, files in (("derived files (converted weights)", derived), ("partial downloads", partial)):
        if files:
            print(f"{what}: {len(files)}, {_size(sum(p.stat().st_size for p in files))}")
            if args.verbose:
                for p in files:
                    print(f"    {p}")
    print(f"cache: {hub.cache_dir(args.model_dir)} ({hub.cache_source(args.model_dir)})"
          + ("; offline mode" if hub.is_offline() else ""))
    if args.workspace is not None:
        from ..classifier.info import summary_line

        print(f"trained models in {args.workspace}: {len(trained) or 'none'}")
        for info in trained:
            print(f"  {info['path']}: {summary_line(info)}")
    return EXIT_OK


def _trained(workspace) -> list[dict]:
    if workspace is None:
        return []
    from ..classifier.info import find_models

    return find_models(workspace)


def run_info(args) -> int:
    """Describe model files; a file that is not a classifier fails (exit 1), the others are described."""
    from ..classifier.info import model_summary, summary_line
    from ..errors import AudioTaggerError

    infos, failed = [], 0
    for path in args.paths:
        try:
            infos.append(model_summary(path))
        except AudioTaggerError as exc:
            failed += 1
            print(error_line(exc), file=sys.stderr)
    if args.json:
        print(json.dumps(infos, indent=2))
    else:
        for info in infos:
            print(f"{info['path']}: {info['name']}")
            print(f"  {summary_line(info)}")
    return EXIT_FAILED if failed else EXIT_OK


def _names(names: list[str]) -> list[str]:
    from .. import hub

    if "all" in names:
        return [n for n, i in hub.REGISTRY.items() if i.kind != "packaged"]
    for name in names:
        hub.get_info(name)  # ParameterError (exit 2) for an unknown name, before any download
    return list(dict.fromkeys(names))


def run_download(args) -> int:
    """Download each named model; a failure is reported and the others still downloaded."""
    from .. import hub
    from ..errors import AudioTaggerError

    failed = 0
    for name in _names(args.names):
        try:
            path = hub.fetch(name, model_dir=args.model_dir, force=args.force, progress=not args.quiet)
        except AudioTaggerError as exc:
            failed += 1
            print(error_line(exc), file=sys.stderr)
            continue
        print(f"{name}: {path}")
    return EXIT_FAILED if failed else EXIT_OK


def run_import(args) -> int:
    """Verify and copy one file into the cache."""
    from .. import hub

    path = hub.import_file(args.path, args.name, model_dir=args.model_dir)
    print(f"{hub.identify(path).name if args.name is None else args.name}: {path}")
    return EXIT_OK


def run_path(args) -> int:
    """Print the cached file's path; exit 1 (with a note on stderr) if it is not there."""
    from .. import hub

    path = hub.cached_path(args.name, args.model_dir)
    print(path)
    if not path.is_file():
        print(f"audiotagger: {args.name} is not cached; run `audiotagger models download {args.name}`",
              file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def run_verify(args) -> int:
    """Verify cached models completely; exit 1 if any named one is missing or any is corrupt."""
    from .. import hub

    names = _names(args.names) if args.names else [
        s.info.name for s in hub.list_models(model_dir=args.model_dir) if s.state != "missing"]
    if not names:
        print(f"audiotagger: no model cached in {hub.cache_dir(args.model_dir)}", file=sys.stderr)
        return EXIT_OK
    bad = 0
    for name in names:
        st = hub.status(name, model_dir=args.model_dir, full=True)
        if st.state in ("verified", "packaged"):
            print(f"{name}: ok ({_size(st.size)}, {st.info.checksum}) {st.path}")
        else:
            bad += 1
            why = (st.problem or st.state).removeprefix(f"{st.path}: ")
            hint = (f"run `audiotagger models download {name}` or `audiotagger models import PATH`"
                    if st.state == "missing" else
                    f"download it again with `audiotagger models download --force {name}`")
            print(f"audiotagger: error: {st.path}: {name} {st.state}: {why}; {hint}", file=sys.stderr)
    return EXIT_FAILED if bad else EXIT_OK


def run_clean(args) -> int:
    """Remove derived and leftover files from the cache; print each with its size and the total."""
    from .. import hub

    removed = hub.clean(model_dir=args.model_dir, partial=args.partial, dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    for path, size in removed:
        print(f"{verb} {path} ({_size(size)})")
    total = sum(size for _, size in removed)
    print(f"audiotagger: {verb} {len(removed)} file(s), {_size(total)} in {hub.cache_dir(args.model_dir)}",
          file=sys.stderr)
    return EXIT_OK
