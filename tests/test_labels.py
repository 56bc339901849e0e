import pytest

from audiotagger.errors import ParameterError
from audiotagger.labels import load_labels, load_ontology
from audiotagger.params import MUSIC_MID, NUM_CLASSES, SILENCE_MID, SPEECH_MID

from .conftest import shared_file


def test_labels_parsed_with_csv_reader():
    labels = load_labels()
    assert len(labels) == NUM_CLASSES
    assert labels.names[1] == "Male speech, man speaking"  # quoted name with a comma
    assert labels.mids[0] == SPEECH_MID and labels.mids[137] == MUSIC_MID
    assert labels.mids[500] == SILENCE_MID and labels.names[500] == "Silence"


def test_label_lookup():
    labels = load_labels()
    assert labels.index("/m/04rlf") == 137
    assert labels.index("music") == 137
    assert labels.index("500") == 500
    with pytest.raises(ParameterError):
        labels.index("no such class")
    with pytest.raises(ParameterError):
        labels.index(527)


def test_packaged_labels_match_shared_copy():
    shared = shared_file("labels", "class_labels_indices.csv").read_bytes()
    from importlib import resources
    assert resources.files("audiotagger").joinpath("data/class_labels_indices.csv").read_bytes() == shared


def test_ontology_covers_every_class():
    onto = load_ontology()
    assert len(onto) == 632
    assert all(mid in onto for mid in load_labels().mids)
