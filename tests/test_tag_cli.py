"""``audiotagger tag`` without models: usage errors, --from-probs re-rendering, skipping, batches."""

import os

import numpy as np
import pytest

from audiotagger.cli import main
from audiotagger.tag.select import DisplayOptions, Selection
from audiotagger.tag.writers import get_writer
from tests.test_writers import golden_result


def save_probs(path, options=None):
    options = options or DisplayOptions(threshold=0.2)
    get_writer("npz").write(Selection(golden_result(), options), path)
    return path


@pytest.mark.parametrize("argv", [
    ["tag", "x.wav", "--threshold", "1.5"],
    ["tag", "x.wav", "--threshold", "-0.1"],
    ["tag", "x.wav", "--left", "-1"],
    ["tag", "x.wav", "--top-k", "0"],
    ["tag", "x.wav", "-f", "srt,mp3"],
    ["tag", "x.wav", "--exclude", "Not a class"],
    ["tag", "x.wav", "--model", "panns-cnn14", "--compat-truncate"],
    ["tag"],
])
def test_usage_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert "error" in capsys.readouterr().err


def test_from_probs_rerenders_identical_files(tmp_path, capsys):
    npz = save_probs(tmp_path / "walk.npz", DisplayOptions(threshold=0.2, per_second=True))
    out = tmp_path / "out"
    assert main(["tag", "--from-probs", str(npz), "-f", "srt,vtt,tsv,csv,json,txt", "-o", str(out)]) == 0
    sel = Selection(golden_result(), DisplayOptions(threshold=0.2, per_second=True))
    for fmt in ("srt", "vtt", "tsv", "csv", "json", "txt"):
        assert (out / f"walk.{fmt}").read_text(encoding="utf-8") == get_writer(fmt).render(sel), fmt
    stdout = capsys.readouterr().out
    assert "walk.wav: 8.2 s, 8 steps" in stdout and "Dog" in stdout
    # an explicit flag overrides the stored option
    assert main(["tag", "--from-probs", str(npz), "-f", "srt", "-o", str(out), "--overwrite",
                 "--threshold", "0.7", "-q"]) == 0
    assert capsys.readouterr().out == ""
    assert (out / "walk.srt").read_text().count("-->") == 8
    assert "Bark" not in (out / "walk.srt").read_text()


def test_existing_outputs_skipped_unless_overwrite(tmp_path, capsys):
    npz = save_probs(tmp_path / "walk.npz")
    args = ["tag", "--from-probs", str(npz), "-f", "srt,npz", "-o", str(tmp_path)]
    assert main(args) == 0
    srt = tmp_path / "walk.srt"
    srt.write_text("keep me")
    assert main(args) == 0
    assert srt.read_text() == "keep me"
    assert "skipping" in capsys.readouterr().err
    before = npz.read_bytes()
    assert main(args + ["--overwrite"]) == 0
    assert srt.read_text() != "keep me"
    assert npz.read_bytes() == before          # the input itself is never rewritten


def test_bad_inputs_fail_alone(tmp_path, capsys):
    good = save_probs(tmp_path / "good.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"garbage")
    out = tmp_path / "out"
    code = main(["tag", "--from-probs", str(bad), "--from-probs", str(good), "--from-probs",
                 str(tmp_path / "missing.npz"), "-f", "srt,tsv", "-o", str(out)])
    assert code == 1
    err = capsys.readouterr().err
    assert f"{bad}: cannot read probability file" in err
    assert "missing.npz" in err and "2 failed" in err
    assert sorted(os.listdir(out)) == ["good.srt", "good.tsv"]


def test_recursive_mirrors_tree_and_same_stem_clash(tmp_path, capsys):
    src = tmp_path / "in"
    save_probs(src / "a" / "x.npz")
    save_probs(src / "b" / "x.npz")
    out = tmp_path / "out"
    assert main(["tag", "--from-probs", str(src), "--recursive", "-f", "srt", "-o", str(out), "-q"]) == 0
    assert (out / "a" / "x.srt").is_file() and (out / "b" / "x.srt").is_file()
    flat = tmp_path / "flat"
    code = main(["tag", "--from-probs", str(src / "a" / "x.npz"), "--from-probs", str(src / "b" / "x.npz"),
                 "-f", "srt", "-o", str(flat)])
    assert code == 1
    assert "is also the output of" in capsys.readouterr().err
    assert os.listdir(flat) == ["x.srt"]


def test_mp4_from_probs_without_video_fails_cleanly(tmp_path, capsys):
    npz = save_probs(tmp_path / "walk.npz")
    code = main(["tag", "--from-probs", str(npz), "-f", "srt,mp4", "-o", str(tmp_path / "o")])
    assert code == 1
    assert "walk.wav" in capsys.readouterr().err
    assert os.listdir(tmp_path / "o") == []      # a failed input leaves none of its outputs (issue 13)


def test_smoothing_flag_forms():
    from audiotagger.cli import parse_args
    from audiotagger.cli.common import smooth_steps

    def steps(*argv):
        args = parse_args(["tag", "a.wav", *argv])
        return smooth_steps(args.smooth, args.smooth_size, 5)

    assert steps("--smooth") == 5
    assert steps("--smooth", "3") == 3
    assert steps("--smooth-size", "4") == 4
    assert steps("--smooth", "--smooth-size", "4") == 4          # parse's spelling works for tag too
    assert steps("--smooth", "no") == 0 and steps("--smooth", "yes") == 5
    assert steps() is None
    assert parse_args(["tag", "a.wav", "--show_music_speech", "n"]).show_music_speech is False
    assert parse_args(["tag", "a.wav", "--show-music-speech"]).show_music_speech is True
    assert np.isclose(parse_args(["tag", "a.wav", "--threshold", "0.01"]).threshold, 0.01)


def test_tag_file_from_probs_api(tmp_path):
    from audiotagger import tag_file

    npz = save_probs(tmp_path / "walk.npz")
    before = npz.read_bytes()
    result = tag_file(npz, from_probs=True, output_dir=tmp_path, formats="srt,npz", overwrite=True,
                      per_second=True)
    assert result.num_steps == 8 and npz.read_bytes() == before
    assert (tmp_path / "walk.srt").read_text().count("-->") == 8
