"""In-graph text processing: normalisation, tokens, vocabulary, round trips."""

import unicodedata

import keras
import numpy as np
import pytest
import tensorflow as tf

from seq2seq_keras import TextProcessor
from seq2seq_keras.text import END_ID, PAD_ID, START_ID, UNK_ID
from seq2seq_keras.translation import to_python_strings


def test_korean_stays_nfc_hangul_not_jamo():
    ko = TextProcessor.for_language("ko")
    decomposed = unicodedata.normalize("NFD", "나는 학생이다")  # jamo input
    out = to_python_strings(ko.standardize(["나는 학생이다", decomposed]))
    assert out == ["나는 학생이다", "나는 학생이다"]
    for text in out:
        assert unicodedata.is_normalized("NFC", text)
        assert not any(0x1100 <= ord(c) <= 0x11FF for c in text)


def test_korean_refuses_nfkd():
    with pytest.raises(ValueError, match="jamo"):
        TextProcessor(language="ko", normalization="NFKD")


def test_spanish_strips_accents_and_splits_punctuation():
    es = TextProcessor.for_language("es")
    assert to_python_strings(es.tokenize_words(["¿Qué tal, señor?"])) == [["¿", "que", "tal", ",", "senor", "?"]]


def test_control_characters_invalid_utf8_and_empty_input_are_defined():
    en = TextProcessor.for_language("en").adapt(["hello world"])
    words = to_python_strings(en.tokenize_words([b"hello\x00\x07world", b"\xff\xfehello", b"", b"   "]))
    assert words[0] == ["hello", "world"]
    assert words[1] == ["\ufffd\ufffdhello"]  # invalid bytes become U+FFFD
    assert words[2] == [] and words[3] == []
    ids = en.encode([b"\xff", ""]).to_list()
    assert ids == [[UNK_ID], []]


def test_vocabulary_order_reserved_first_then_frequency():
    p = TextProcessor.for_language("en").adapt(["b a a", "c a b"])
    assert p.vocabulary == ["", "[UNK]", "[START]", "[END]", "a", "b", "c"]


def test_max_tokens_and_min_frequency():
    texts = ["a a a b b c"]
    assert TextProcessor(max_tokens=6).adapt(texts).vocabulary[4:] == ["a", "b"]
    assert TextProcessor(min_frequency=2).adapt(texts).vocabulary[4:] == ["a", "b"]


def test_unknown_words_become_unk_and_never_raise():
    p = TextProcessor.for_language("en", add_start_end=True).adapt(["i am a student"])
    ids = p(["i am a zebra", "완전히 모르는"]).numpy()
    vocab = p.vocabulary
    assert ids[0].tolist() == [START_ID, vocab.index("i"), vocab.index("am"), vocab.index("a"), UNK_ID, END_ID]
    assert ids[1].tolist() == [START_ID, UNK_ID, UNK_ID, END_ID, PAD_ID, PAD_ID]


def test_detokenize_round_trip_and_stops_at_end():
    p = TextProcessor.for_language("en", add_start_end=True).adapt(["I am a student.", "Is he here?"])
    ids = p(["I am a student.", "Is he here?"])
    assert to_python_strings(p.detokenize(ids)) == ["i am a student.", "is he here?"]
    v = p.vocabulary
    after_end = [[START_ID, v.index("i"), END_ID, v.index("am"), 0]]
    assert to_python_strings(p.detokenize(after_end)) == ["i"]


def test_max_length_truncates_with_room_for_specials():
    p = TextProcessor(add_start_end=True, max_length=4).adapt(["a b c d e"])
    assert p(["a b c d e"]).numpy().shape == (1, 4)
    assert p(["a b c d e"]).numpy()[0, -1] == END_ID


def test_subword_keeps_rare_korean_forms_out_of_unk():
    texts = ["나는 학생이다.", "그는 학생이었다.", "나는 의사이다.", "그녀는 의사였다."] * 40
    p = TextProcessor.for_language("ko", subword=True, max_tokens=60).adapt(texts)
    ids = p.encode(["그녀는 학생이었다"]).to_list()[0]
    assert UNK_ID not in ids
    assert to_python_strings(p.detokenize([ids])) == ["그녀는 학생이었다"]


def test_get_config_round_trip_and_serialization():
    p = TextProcessor.for_language("ko", max_length=10).adapt(["나는 학생이다.", "그는 의사이다."])
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(p))
    assert clone.vocabulary == p.vocabulary and clone.normalization == "NFC"
    np.testing.assert_array_equal(clone(["나는 의사이다."]), p(["나는 의사이다."]))


def test_adapt_is_required_before_lookup():
    with pytest.raises(ValueError, match="adapt"):
        TextProcessor().encode(["x"])


def test_works_inside_tf_data_and_tf_function():
    p = TextProcessor.for_language("en").adapt(["a b c"])
    ds = tf.data.Dataset.from_tensor_slices(["a b", "c"]).batch(2).map(p.encode)
    assert next(iter(ds)).to_list() == [[4, 5], [6]]
    fn = tf.function(lambda s: p.detokenize(p(s)), input_signature=[tf.TensorSpec([None], tf.string)])
    assert to_python_strings(fn(tf.constant(["c b a"]))) == ["c b a"]


def test_tf_tokenization_matches_the_builtin_corpus_gold_tokens():
    """The alignment indices of the built-in corpus refer to exactly these tokens."""
    from seq2seq_keras.data.builtin_ko_en import generate_pairs

    pairs = generate_pairs(2000, seed=3)
    ko, en = TextProcessor.for_language("ko"), TextProcessor.for_language("en")
    src = to_python_strings(ko.tokenize_words([p.source for p in pairs]))
    tgt = to_python_strings(en.tokenize_words([p.target for p in pairs]))
    assert src == [list(p.source_tokens) for p in pairs]
    assert tgt == [list(p.target_tokens) for p in pairs]


def test_detokenize_rejoins_contractions_and_hyphens():
    p = TextProcessor.for_language("en", add_start_end=True).adapt(["We've got a well-known cat, don't we?"])
    ids = p(["We've got a well-known cat, don't we?"])
    assert to_python_strings(p.detokenize(ids)) == ["we've got a well-known cat, don't we?"]


# ---------------------------------------------------------------------- WordPiece (subword=True)
# A hand-written vocabulary, so every piece below is known exactly (no learner involved).
EN_PIECES = ["the", "stud", "##ent", "##s", "are", "##n", "'", "t", "here", ",", "they", "?", ".", "we", "##y"]


def _en_pieces(**kwargs):
    return TextProcessor(language="en", subword=True, vocabulary=EN_PIECES, **kwargs)


def test_subword_pieces_and_detokenize_round_trip_like_word_mode():
    p = _en_pieces(add_start_end=True)
    sentences = ["The students aren't here, are they?", "Zq studs."]
    assert to_python_strings(p.tokenize(sentences)) == [
        ["the", "stud", "##ent", "##s", "are", "##n", "'", "t", "here", ",", "are", "they", "?"],
        ["[UNK]", "stud", "##s", "."],
    ]
    v = p.vocabulary
    assert p(sentences).numpy()[1].tolist()[:6] == [
        START_ID,
        UNK_ID,
        v.index("stud"),
        v.index("##s"),
        v.index("."),
        END_ID,
    ]
    words = TextProcessor(language="en", add_start_end=True).adapt(sentences)
    # Pieces joined into words, no "##" left, punctuation spaced exactly as the word vocabulary does.
    assert to_python_strings(p.detokenize(p(sentences))) == ["the students aren't here, are they?", "[UNK] studs."]
    assert to_python_strings(words.detokenize(words(sentences[:1]))) == ["the students aren't here, are they?"]


def test_subword_detokenize_a_leading_continuation_piece_shows_no_hashes():
    p = _en_pieces(add_start_end=True)
    v = p.vocabulary
    ids = [[START_ID, v.index("##s"), v.index("stud"), v.index("##ent"), v.index("."), END_ID, v.index("##y")]]
    assert to_python_strings(p.detokenize(ids)) == ["s student."]


def test_subword_korean_pieces_stay_nfc_syllables():
    ko = TextProcessor(language="ko", subword=True, vocabulary=["학생", "##이었", "##다", "그녀", "##는", "."])
    jamo_input = unicodedata.normalize("NFD", "그녀는 학생이었다.")
    assert to_python_strings(ko.tokenize([jamo_input])) == [["그녀", "##는", "학생", "##이었", "##다", "."]]
    assert ko.encode([jamo_input]).to_list() == [[7, 8, 4, 5, 6, 9]]  # 4 reserved ids, then the list order
    (text,) = to_python_strings(ko.detokenize(ko.encode([jamo_input])))
    assert text == "그녀는 학생이었다."
    assert unicodedata.is_normalized("NFC", text) and not any(0x1100 <= ord(c) <= 0x11FF for c in text)


def test_subword_token_words_give_the_whole_word_of_every_piece():
    p = _en_pieces()
    sentences = ["The students aren't here.", "Zq studs."]
    assert to_python_strings(p.token_words(sentences)) == [
        ["the", "students", "students", "students", "aren", "aren", "'", "t", "here", "."],
        ["zq", "studs", "studs", "."],
    ]
    assert to_python_strings(p.token_words_as_written(sentences))[1] == ["Zq", "studs", "studs", "."]


def test_unknown_word_replacement_in_subword_mode_copies_the_whole_source_word():
    """Attention on the 2nd piece of "estudiante" copies "estudiante", never "##ante"."""
    from seq2seq_keras.decoding.unknown_words import replace_unknown_words

    source = TextProcessor(language="es", subword=True, vocabulary=["el", "estudi", "##ante", "llega"])
    target = _en_pieces(add_start_end=True)
    words = source.token_words(["El estudiante Zq llega"]).to_tensor()
    assert to_python_strings(source.tokenize(["El estudiante Zq llega"])) == [
        ["el", "estudi", "##ante", "[UNK]", "llega"]
    ]
    v = target.vocabulary
    ids = tf.constant([[v.index("the"), UNK_ID, UNK_ID, END_ID]])
    tokens = target.ids_to_tokens(ids)
    attention = tf.constant(
        [
            [
                [0.7, 0.1, 0.1, 0.05, 0.05],
                [0.1, 0.3, 0.4, 0.1, 0.1],  # argmax: "##ante", a piece of "estudiante"
                [0.1, 0.1, 0.1, 0.6, 0.1],  # argmax: "zq", an unknown word
                [0.2, 0.2, 0.2, 0.2, 0.2],
            ]
        ]
    )
    new_tokens, replaced = replace_unknown_words(ids, tokens, attention, words)
    assert to_python_strings(new_tokens) == [["the", "estudiante", "zq", "[END]"]]
    assert replaced.numpy().tolist() == [[False, True, True, False]]


def test_readable_pieces_mark_both_sides_of_every_join():
    from seq2seq_keras.text import readable_pieces

    tokens = ["the", "stud", "##ent", "##s", ",", "[UNK]", "##s", "학생", "##이었", "##다", "##", "[END]"]
    assert readable_pieces(tokens) == [
        "the",
        "stud-",
        "-ent-",
        "-s",
        ",",
        "[UNK]-",
        "-s",
        "학생-",
        "-이었-",
        "-다",
        "##",
        "[END]",
    ]
    word_tokens = ["i", "'", "m", "a", "well", "-", "known", "student", "."]
    assert readable_pieces(word_tokens) == word_tokens


def test_heatmap_labels_of_a_subword_translation_are_readable():
    from seq2seq_keras.plotting import attention_view

    view = {
        "source": "estudiantes",
        "source_tokens": ["estudi", "##antes", ""],
        "target_tokens": ["stud", "##ent", "##s", "[END]"],
        "attention": np.full((4, 3), 1 / 3),
        "replaced": [0, 0, 0, 0],
    }
    source_labels, target_labels, attention, _ = attention_view(view)
    assert source_labels == ["estudi-", "-antes"]
    assert target_labels == ["stud-", "-ent-", "-s", "[END]"]
    assert attention.shape == (4, 2)


def test_wordpiece_vocabulary_cap_keeps_every_character_then_the_most_frequent_pieces():
    from seq2seq_keras.text import _cap_wordpiece_vocabulary

    learned = ["[UNK]", "[START]", "[END]", "a", "b", "el", "##es", "casa", "##as", "##a", "##b", "##"]
    # 4 reserved ids + 4 characters leave room for 2 learned pieces, taken in the learner's order.
    assert _cap_wordpiece_vocabulary(learned, 10) == ["a", "b", "##a", "##b", "el", "##es"]
    assert _cap_wordpiece_vocabulary(learned, 100) == ["a", "b", "##a", "##b", "el", "##es", "casa", "##as", "##"]
    assert _cap_wordpiece_vocabulary(learned, 5) == ["a", "b", "##a", "##b"]  # never below the alphabet


def test_subword_adapt_reaches_max_tokens_and_honours_min_frequency():
    texts = ["los estudiantes estudian en casa.", "las casas son grandes.", "el estudiante canta."] * 12
    capped = TextProcessor.for_language("es", subword=True, max_tokens=45).adapt(texts)
    frequent_only = TextProcessor.for_language("es", subword=True, max_tokens=45, min_frequency=40).adapt(texts)
    assert 0.95 * 45 <= capped.vocabulary_size <= 45  # the learner aims within 5% under its target
    # No piece is seen 40 times: only the reserved tokens and the alphabet (alone and as ##c) remain.
    alphabet = sorted(set("".join(texts).replace(" ", "")))
    assert sorted(frequent_only.vocabulary[4:]) == sorted(alphabet + ["##" + c for c in alphabet])


def test_unknown_mask_and_words_against_a_hand_built_vocabulary():
    """Which tokens of a sentence the model reads as [UNK]: the model's own tokens (NFC, lower case, punctuation)."""
    ko = TextProcessor.for_language("ko", vocabulary=["나는", "학생이다", "."])
    decomposed = unicodedata.normalize("NFD", "나는 학생이다.")  # jamo in, NFC syllables in the vocabulary
    sentences = ["오늘 날씨가 정말 좋네요.", decomposed, "나는 오늘 오늘!", ""]
    mask = ko.unknown_mask(sentences).to_list()
    assert mask == [[True, True, True, True, False], [False, False, False], [False, True, True, True], []]
    # Aligned with the model's input: True exactly where encode() gives the [UNK] id.
    assert mask == [[i == UNK_ID for i in row] for row in ko.encode(sentences).to_list()]
    assert to_python_strings(ko.unknown_words(sentences)) == [
        ["오늘", "날씨가", "정말", "좋네요"],
        [],
        ["오늘", "오늘", "!"],
        [],
    ]

    en = TextProcessor.for_language("en", vocabulary=["i", "am", "a", "student", "."], max_length=3)
    # "zebra" is the fourth token: cut by max_length=3 as the model's input is, so not reported.
    assert to_python_strings(en.unknown_words(["I am a zebra.", "Zorvak am here"])) == [[], ["zorvak", "here"]]
    assert en.unknown_mask(["I am a STUDENT."]).to_list() == [[False, False, False]]  # truncated as encode() is


def test_subword_unknown_words_are_whole_words_a_wordpiece_cannot_spell():
    vocabulary = ["학", "##생", "##이", "##다", "나", "##는", "."]
    ko = TextProcessor.for_language("ko", subword=True, vocabulary=vocabulary)
    sentence = ["나는 학생이다 😀 날씨."]
    assert to_python_strings(ko.tokenize(sentence)) == [
        ["나", "##는", "학", "##생", "##이", "##다", "[UNK]", "[UNK]", "."]
    ]
    assert ko.unknown_mask(sentence).to_list() == [[False] * 6 + [True, True, False]]
    assert to_python_strings(ko.unknown_words(sentence)) == [["😀", "날씨"]]
