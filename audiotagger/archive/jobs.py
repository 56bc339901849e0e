"""What a worker does to one file: the plain CLI's library calls, behind one small interface.

A job is built from a plain-dict spec (picklable, no loaded models), loads its backend once
(:meth:`load`, in the worker actor) and then processes files: :meth:`names` gives the output file names
of an input, :meth:`run` decodes, infers and writes them with the same functions ``audiotagger tag`` and
``audiotagger embed`` use (:func:`audiotagger.tag.tagger.write_outputs`,
:func:`audiotagger.vggish.embed.save_embedding`). Jobs never know which backend runs.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from ..errors import DataError, ParameterError
from .storage import is_remote, normalize


@dataclass
class FileInfo:
    """What one processed file reports: seconds of audio, top classes, the stdout summary, a record."""

    audio_s: float
    top_classes: str = ""
    summary: str = ""
    record: bytes = b""


def warm_up(run_file) -> None:
    """Call ``run_file(path)`` on :data:`~.params.WARMUP_SECONDS` of silence (a temporary WAV file).

    The backend's buffers (ONNX Runtime's arenas, the allocator's pools) then reach their working size
    before the worker's memory limit is set, so the limit holds what one file adds, not the model's first
    run.
    """
    import tempfile

    import soundfile as sf

    from .params import WARMUP_SECONDS

    with tempfile.TemporaryDirectory(prefix="audiotagger-warm-") as folder:
        path = os.path.join(folder, "silence.wav")
        sf.write(path, np.zeros(int(WARMUP_SECONDS * 16000), np.float32), 16000)
        run_file(path)


def input_stem(given: str) -> str:
    """The stem an input's outputs are named after (``<stem>.<ext>``): of the path, or of the URL's path."""
    return PurePosixPath(given.split("?", 1)[0]).stem if is_remote(given) else Path(given).stem


class TagJob:
    """``audiotagger tag``: a backend from ``load_backend`` and the plain CLI's writers."""

    command = "tag"

    def __init__(self, spec: dict[str, Any]):
        self.spec = spec

    def check(self) -> None:
        """Raise the usage errors of these options (on the driver, before any work)."""
        from ..tag.tagger import (
            backend_display,
            backend_name,
            check_auto,
            check_backend_options,
            model_labels,
            model_thresholds,
            model_title,
            resolve_display,
        )
        from ..tag.windows import check_context

        s = self.spec
        check_context(s["options"]["left"], s["options"]["right"])
        check_backend_options(backend_name(s["model"]), compat_truncate=s["options"]["compat_truncate"],
                              sample_duration=s["options"]["sample_duration"],
                              hop_duration=s["options"]["hop_duration"])
        options = resolve_display(backend_display(s["display"], backend_name(s["model"])),
                                  labels=model_labels(s["model"]))
        if options.auto:
            check_auto(options, model_thresholds(s["model"]), model_title(s["model"]))

    def load(self) -> None:
        """Load the backend (once per worker) and warm it up (:func:`warm_up`)."""
        from ..tag.tagger import backend_display, backend_name, load_backend, model_labels, resolve_display

        s = self.spec
        self.backend = load_backend(s["model"], **s["backend"])
        self.options = resolve_display(backend_display(s["display"], backend_name(s["model"])),
                                       labels=model_labels(s["model"]))
        warm_up(lambda path: list(self.backend.iter_tag([path], **s["options"])))

    def names(self, given: str) -> dict[str, str]:
        """Output file name per format (``<stem>.<ext>``, as the plain CLI names them)."""
        from ..tag.tagger import output_paths

        paths = output_paths(Path(input_stem(given) + ".x"), "", self.spec["formats"])
        return {fmt: p.name for fmt, p in paths.items()}

    def run(self, local: str, given: str, key: str, targets: dict[str, Path]) -> FileInfo:
        """Tag ``local`` and write ``targets`` (format → local path); names in outputs are ``given``."""
        from ..tag.select import Selection
        from ..tag.tagger import write_outputs

        ((_, result),) = self.backend.iter_tag([local], **self.spec["options"])
        if isinstance(result, BaseException):
            raise result
        result.source = given
        if is_remote(key):
            result.meta["path"] = key
        sel = Selection(result, self.options)
        write_outputs(sel, targets, overwrite=True, burn=self.spec["burn"], source=local)
        top = "; ".join(f"{result.names[c]} {score:.3f}" for c, score, _ in sel.summary())
        return FileInfo(float(result.duration), top, sel.summary_text())


class EmbedJob:
    """``audiotagger embed``: the VGGish embedder and :func:`~audiotagger.vggish.embed.save_embedding`.

    With ``sharded`` (``-f tfrecord`` on Ray) a file's output is one AudioSet ``SequenceExample`` returned
    to the driver, which writes shards of ``--shard-size`` records.
    """

    command = "embed"

    def __init__(self, spec: dict[str, Any]):
        self.spec = spec

    def check(self) -> None:
        """Raise the usage errors of these options."""
        from ..vggish.features import framing_hop

        framing_hop(self.spec["hop"], self.spec["compat_truncate"])
        if self.spec.get("labels_csv"):
            read_labels_csv(self.spec["labels_csv"], self.spec.get("cwd"))

    def load(self) -> None:
        """Load VGGish and the PCA parameters (once per worker, warmed up), and the labels CSV when given."""
        from ..vggish.embed import VGGishEmbedder

        s = self.spec
        self.embedder = VGGishEmbedder(s["checkpoint"], s["pca_params"], s["model_dir"], s["offline"],
                                       batch_size=s["batch_size"], engine=s.get("engine"),
                                       precision=s.get("precision"), resampler=s.get("resampler"))
        self.labels = read_labels_csv(s["labels_csv"], s.get("cwd")) if s.get("labels_csv") else None
        warm_up(lambda path: list(self.embedder.iter_embed([path], hop=s["hop"])))

    def names(self, given: str) -> dict[str, str]:
        """``{format: <stem>.<ext>}``; nothing when records go into shards."""
        if self.spec["sharded"]:
            return {}
        return {self.spec["format"]: f"{input_stem(given)}.{self.spec['format']}"}

    def run(self, local: str, given: str, key: str, targets: dict[str, Path]) -> FileInfo:
        """Embed ``local``; write its file, or return its labelled record for a shard."""
        from ..vggish.embed import save_embedding

        s = self.spec
        ((_, emb),) = self.embedder.iter_embed([local], hop=s["hop"], save_logmel=s["save_logmel"],
                                               compat_truncate=s["compat_truncate"])
        if isinstance(emb, BaseException):
            raise emb
        emb.source = given
        if not self.spec["sharded"]:
            for fmt, path in targets.items():
                save_embedding(emb, path, format=fmt, overwrite=True)
            return FileInfo(float(emb.duration))
        from ..records import encode_sequence_example

        labels = ()
        if self.labels is not None:
            labels = self.labels.get(key, self.labels.get(os.path.basename(key)))
            if labels is None:
                raise DataError(f"{given}: no row in --labels-csv {self.spec['labels_csv']}")
        record = encode_sequence_example(input_stem(given), emb.embedding, 0.0, emb.duration, labels)
        return FileInfo(float(emb.duration), record=record)


JOBS = {"tag": TagJob, "embed": EmbedJob}


def make_job(spec: dict[str, Any]) -> TagJob | EmbedJob:
    """The job of ``spec["command"]``."""
    return JOBS[spec["command"]](spec)


def read_labels_csv(path: str, cwd: str | None = None) -> dict[str, tuple[int, ...]]:
    """Read ``--labels-csv``: rows ``path,labels`` (a header row is optional).

    ``labels`` holds AudioSet mids (``/m/09x0r``) or display names (``Speech``), separated by ``;`` or ``|``,
    or by ``,`` inside a quoted field as in AudioSet's own CSVs (display names containing commas, such as
    ``"Male speech, man speaking"``, are recognised whole).

    Returns
    -------
    dict
        Input key (absolute path or URL) and file name → class indices; each file name only when it is
        unique in the CSV.

    Raises
    ------
    ParameterError
        Missing file, or a label that is neither a mid nor a display name (naming the line).
    """
    from ..labels import load_labels

    labels = load_labels()
    index = {m: i for i, m in enumerate(labels.mids)}
    index.update({n.lower(): i for i, n in enumerate(labels.names)})
    out: dict[str, tuple[int, ...]] = {}
    names: dict[str, tuple[int, ...] | None] = {}
    try:
        if is_remote(path):
            from .storage import filesystem

            fs, inner = filesystem(path)
            text = fs.cat_file(inner).decode("utf-8")
        else:
            text = Path(normalize(path, cwd)).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ParameterError(f"--labels-csv {path}: cannot read ({exc})") from None
    for number, row in enumerate(csv.reader(text.splitlines()), 1):
        if not row or row[0].startswith("#") or (number == 1 and row[0].strip().lower() == "path"):
            continue
        if len(row) < 2:
            raise ParameterError(f"--labels-csv {path}:{number}: expected 'path,labels', got {row!r}")
        file, field = row[0].strip(), ",".join(row[1:])
        try:
            found = _parse_labels(field, index)
        except KeyError as exc:
            raise ParameterError(f"--labels-csv {path}:{number}: unknown label {exc.args[0]!r} "
                                 "(give AudioSet mids or display names)") from None
        out[normalize(file, cwd)] = found
        base = os.path.basename(file)
        names[base] = None if base in names else found
    out.update({k: v for k, v in names.items() if v is not None and k not in out})
    return out


def _parse_labels(field: str, index: dict[str, int]) -> tuple[int, ...]:
    seps = [s for s in (";", "|") if s in field]
    tokens = [t.strip() for t in (field.split(seps[0]) if seps else field.split(","))]
    tokens = [t for t in tokens if t]
    found, i = [], 0
    while i < len(tokens):
        for j in range(len(tokens), i, -1):            # longest run of tokens that is one name
            name = ", ".join(tokens[i:j])
            key = name if name.startswith("/") else name.lower()
            if key in index:
                found.append(index[key])
                i = j
                break
        else:
            raise KeyError(tokens[i])
    return tuple(sorted(set(found)))
