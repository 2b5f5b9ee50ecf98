"""The result type (seq2seq_keras/translation.py): batch-major outputs -> Translations, on hand-made NumPy
and JSON-shaped values (no model, no TensorFlow needed), and the sentence <-> bytes rules."""

from __future__ import annotations

import numpy as np
import pytest

from seq2seq_keras.translation import Translation, as_utf8_bytes, readable, results_to_translations, to_python_strings


def _outputs(with_beams=True):
    """Two sentences as a SavedModel returns them (beam search, k = 2), padded to src_len 3, tgt_len 4."""
    attention = np.arange(2 * 4 * 3, dtype=np.float64).reshape(2, 4, 3) / 100
    out = {
        "translation": np.array([b"he eats.", b""], dtype=object),
        "source_tokens": np.array([[b"\xea\xb7\xb8\xeb\x8a\x94", b"eats", b"."], [b"", b"", b""]], dtype=object),
        "source_length": np.array([3, 0], np.int32),
        "target_tokens": np.array([["he", "eats", ".", "[END]"], ["", "", "", ""]], dtype=object),
        "target_length": np.array([4, 0], np.int32),
        "attention": attention,
        "log_prob": np.array([-0.5, 0.0]),
        "score": np.array([-0.25, 0.0]),
        "replaced": np.array([[1, 0, 0, 0], [0, 0, 0, 0]], np.int32),
    }
    if with_beams:
        out.update(
            beams_translation=np.array([["he eats.", "it eats."], ["", ""]], dtype=object),
            beams_target_tokens=np.array(
                [[["he", "eats", ".", "[END]"], ["it", "eats", "[END]", ""]], [["", "", "", ""], ["", "", "", ""]]],
                dtype=object,
            ),
            beams_target_length=np.array([[4, 3], [0, 0]], np.int32),
            beams_attention=np.stack([attention, attention + 1], axis=1),
            beams_log_prob=np.array([[-0.5, -0.75], [0.0, 0.0]]),
            beams_score=np.array([[-0.25, -0.375], [0.0, 0.0]]),
            beams_replaced=np.zeros((2, 2, 4), np.int32),
            beams_count=np.array([2, 2], np.int32),
        )
    return out


def test_outputs_become_translations_cut_to_their_lengths():
    first, empty = results_to_translations(_outputs(), ["그는 eats.", b"\xff"], n_best=2)
    assert (first.source, first.text, first.source_tokens) == ("그는 eats.", "he eats.", ["그는", "eats", "."])
    assert first.target_tokens == ["he", "eats", ".", "[END]"] and first.length == 4 and str(first) == "he eats."
    assert first.attention.dtype == np.float32
    np.testing.assert_array_equal(first.attention, np.float32(np.arange(12).reshape(4, 3) / 100))
    assert (first.log_prob, first.score, first.replaced) == (-0.5, -0.25, [True, False, False, False])
    (second,) = first.alternatives  # n_best = 2: the other hypothesis, with its own length
    assert (second.text, second.target_tokens, second.log_prob, second.score) == (
        "it eats.",
        ["it", "eats", "[END]"],
        -0.75,
        -0.375,
    )
    np.testing.assert_array_equal(second.attention, np.float32(np.arange(9).reshape(3, 3) / 100 + 1))
    assert second.replaced == [False] * 3  # beams_replaced all 0: nothing replaced
    assert (empty.source, empty.text, empty.target_tokens, empty.attention.shape) == ("\ufffd", "", [], (0, 0))


def test_beams_count_says_how_many_alternatives_are_real():
    """``beams_count`` [batch]: only the real hypotheses become alternatives (none for the empty sentence, whose
    second entry is empty padding), in NumPy and JSON-shaped outputs."""
    out = dict(_outputs(), beams_count=np.array([2, 1], np.int32))
    for values in (out, {name: value.tolist() for name, value in out.items()}):
        first, empty = results_to_translations(values, ["그는 eats.", ""], n_best=2)
        assert [a.text for a in first.alternatives] == ["it eats."] and empty.alternatives == []
    out["beams_count"] = np.array([1, 1], np.int32)
    first, _ = results_to_translations(out, ["그는 eats.", ""], n_best=2)
    assert first.alternatives == []
    first, empty = results_to_translations(_outputs(), ["그는 eats.", ""], n_best=2)
    assert len(first.alternatives) == len(empty.alternatives) == 1


def test_outputs_without_scores_and_models_without_attention():
    out = _outputs(with_beams=False)
    for name in ("log_prob", "score"):
        del out[name]
    first, _ = results_to_translations(out, ["a", "b"], has_attention=False)
    assert (first.log_prob, first.score, first.replaced, first.attention) == (0.0, 0.0, [True] + [False] * 3, None)
    assert first.alternatives == []
    nested = {name: value.tolist() for name, value in _outputs(with_beams=False).items()}  # JSON-shaped
    assert results_to_translations(nested, ["a", "b"])[0].text == "he eats."


def test_batch_size_must_agree_and_empty_batches():
    with pytest.raises(ValueError, match="batch dimension"):
        results_to_translations(_outputs(), ["only one"])
    empty = {name: value[:0] for name, value in _outputs(with_beams=False).items()}
    assert results_to_translations(empty, []) == []


def test_sentences_as_bytes_and_text():
    assert as_utf8_bytes("나는") == "나는".encode() and as_utf8_bytes(b"\xff") == b"\xff"
    assert as_utf8_bytes(np.str_("abc")) == b"abc"
    undecodable = b"\xff\xfe abc".decode("utf-8", errors="surrogateescape")  # as sys.argv carries it
    assert as_utf8_bytes(undecodable) == b"\xff\xfe abc" and readable(undecodable) == "\ufffd\ufffd abc"
    assert as_utf8_bytes("\ud800") == b"\xed\xa0\x80"  # a lone surrogate that is not an escaped byte
    with pytest.raises(TypeError, match="str or bytes"):
        as_utf8_bytes(None)
    assert to_python_strings(np.array([[b"a", b"\xff"], [b"c", b""]], dtype=object)) == [["a", "\ufffd"], ["c", ""]]
    assert to_python_strings([["x"], []]) == [["x"], []]
    assert isinstance(Translation("a", "b", ["a"], ["b"], None, 0.0).alternatives, list)


def test_unknown_source_words_are_read_from_the_python_api_output_and_absent_from_a_server_answer():
    """``source_unknown_words`` (the word where the model read [UNK], '' elsewhere) fills unknown_source and
    unknown_source_words, cut to source_length, for the best hypothesis and every alternative alike."""
    out = _outputs()
    out["source_unknown_words"] = np.array([[b"\xea\xb7\xb8\xeb\x8a\x94", b"", b""], [b"", b"", b""]], dtype=object)
    first, empty = results_to_translations(out, ["그는 eats.", ""], n_best=2)
    assert first.unknown_source == [True, False, False] and first.unknown_source_words == ("그는",)
    assert first.unknown_source_count == 1 and not first.mostly_unknown
    (second,) = first.alternatives
    assert (second.unknown_source, second.unknown_source_words) == (first.unknown_source, first.unknown_source_words)
    assert (empty.unknown_source, empty.unknown_source_words, empty.unknown_words_note()) == ([], (), None)
    # A TF Serving answer has no such output: not known (None), which is not "none unknown" ([False, ...]).
    served, _ = results_to_translations(_outputs(), ["그는 eats.", ""], n_best=2)
    assert (served.unknown_source, served.unknown_source_count, served.unknown_words_note()) == (None, 0, None)


@pytest.mark.parametrize(
    ("unknown", "note"),
    [
        ([False, False, False, False, False], None),
        (
            [False, True, False, False, False],
            "1 of 5 source tokens is outside the model's vocabulary (read as [UNK]): 날씨가",
        ),
        (
            [True, True, False, False, False],
            "2 of 5 source tokens are outside the model's vocabulary (read as [UNK]): 오늘, 날씨가",
        ),
        (
            [True, True, True, True, False],
            "4 of 5 source tokens are outside the model's vocabulary (read as [UNK]): 오늘, 날씨가, 정말, 좋네요; "
            "the translation is a guess",
        ),
        (
            [True] * 5,
            "all 5 source tokens are outside the model's vocabulary (read as [UNK]): 오늘, 날씨가, 정말, 좋네요, .; "
            "the translation is a guess",
        ),
    ],
)
def test_unknown_words_note_counts_names_and_calls_a_mostly_unknown_sentence_a_guess(unknown, note):
    tokens = ["오늘", "날씨가", "정말", "좋네요", "."]
    t = Translation(
        "오늘 날씨가 정말 좋네요.",
        "the pigs cry.",
        tokens,
        ["the", "pigs", "cry", "."],
        None,
        -1.0,
        unknown_source=unknown,
        unknown_source_words=tuple(w for w, u in zip(tokens, unknown) if u),
    )
    assert t.unknown_source_count == sum(unknown)
    assert t.mostly_unknown == (sum(unknown) >= 3)  # more than half of 5
    assert t.unknown_words_note() == note


def test_a_one_token_sentence_of_an_unknown_word_is_a_guess():
    t = Translation("안녕", "the dog.", ["안녕"], ["the", "dog", "."], None, -1.0, unknown_source=[True])
    t.unknown_source_words = ("안녕",)
    assert t.mostly_unknown
    assert t.unknown_words_note() == (
        "the one source token is outside the model's vocabulary (read as [UNK]): 안녕; the translation is a guess"
    )
