"""Unknown-word replacement (seq2seq_keras/decoding/unknown_words.py): exact values on hand-made tensors, and
end to end through translate() with a decoder forced to say ``[UNK]``.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import tensorflow as tf
from test_pipeline import (  # noqa: F401  (sentences, tiny_model, tiny_run: fixtures)
    forced_model,
    model_tokens,
    reference_greedy,
    sentences,
    tiny_model,
    tiny_run,
    tiny_run_dir,
)


@pytest.fixture(scope="session")
def unk_model(tiny_run):
    """The tiny model forced to emit ``[UNK]`` at every step (it never ends: it runs to the length cap)."""
    return forced_model(tiny_run, "[UNK]")


def test_replace_unknown_words_copies_the_source_word_under_the_attention_argmax():
    """Exact values on a hand-made case: two [UNK]s, one through the dictionary, one copied; padding untouched."""
    from seq2seq_keras.decoding.unknown_words import replace_unknown_words

    ids = tf.constant([[5, 1, 7, 1, 3, 0]])
    tokens = tf.constant([["i", "[UNK]", "in", "[UNK]", "[END]", ""]])
    attention = tf.constant(
        [
            [
                [0.7, 0.1, 0.1, 0.1],
                [0.1, 0.2, 0.1, 0.6],
                [0.1, 0.1, 0.7, 0.1],
                [0.2, 0.5, 0.2, 0.1],
                [0.25, 0.25, 0.25, 0.25],
                [0.0, 0.0, 0.0, 0.0],
            ]
        ]
    )
    words = tf.constant([["yo", "vivo", "en", "bruselas"]])
    out, replaced = replace_unknown_words(ids, tokens, attention, words)
    assert [t.decode() for t in out.numpy()[0]] == ["i", "bruselas", "in", "vivo", "[END]", ""]
    assert replaced.numpy().tolist() == [[False, True, False, True, False, False]]
    keys, values = tf.constant(["bruselas"]), tf.constant(["Brussels"])
    out, replaced = replace_unknown_words(ids, tokens, attention, words, True, keys, values)
    assert [t.decode() for t in out.numpy()[0]] == ["i", "Brussels", "in", "vivo", "[END]", ""]
    out, replaced = replace_unknown_words(ids, tokens, attention, words, False, keys, values)
    assert [t.decode() for t in out.numpy()[0]] == ["i", "[UNK]", "in", "[UNK]", "[END]", ""]
    assert not replaced.numpy().any()


@pytest.mark.parametrize("method", ["greedy", "beam"])
def test_every_unk_becomes_the_source_word_under_the_attention_argmax(unk_model, method):
    """A decoder forced to say [UNK]: each output word is the source word its own attention row points at."""
    from seq2seq_keras.decoding.pipeline import translate

    sentence = "그는 홍길동 사과를 먹는다 ."
    # All [UNK]: beam's default 3-gram blocking would turn it into other words; this test is about replacement.
    extra = dict(beam_width=3, n_best=3, block_ngram_repeat=0) if method == "beam" else {}
    t = translate(unk_model, sentence, method=method, **extra)
    raw = translate(unk_model, sentence, method=method, replace_unk=False, **extra)
    assert raw.target_tokens == ["[UNK]"] * raw.length and not any(raw.replaced) and all(t.replaced)
    assert raw.text == " ".join(["[UNK]"] * raw.length)
    for hypothesis, plain in zip([t, *t.alternatives], [raw, *raw.alternatives]):
        assert plain.target_tokens == model_tokens(hypothesis)  # the same search
        unk = [tok == "[UNK]" for tok in plain.target_tokens]
        expected = [
            hypothesis.source_tokens[j] if u else tok
            for tok, u, j in zip(plain.target_tokens, unk, np.argmax(hypothesis.attention, axis=1))
        ]
        assert hypothesis.target_tokens == expected and hypothesis.replaced == unk
        np.testing.assert_array_equal(hypothesis.attention, plain.attention)  # the attention is unchanged
        assert hypothesis.log_prob == plain.log_prob
    if method == "greedy":
        tokens, _, rows = reference_greedy(unk_model, sentence)
        assert tokens == [1] * len(tokens)
        words = ["그는", "홍길동", "사과를", "먹는다", "."]
        assert t.target_tokens == [words[j] for j in rows.argmax(axis=1)]
        assert t.text == " ".join(words[j] for j in rows.argmax(axis=1)).replace(" .", ".")
    # The dictionary is looked up first (keys standardised like the source).
    d = translate(unk_model, sentence, method=method, unk_dictionary={"홍길동": "Hong Gildong"}, **extra)
    assert d.target_tokens == ["Hong Gildong" if w == "홍길동" else w for w in t.target_tokens]


def test_unknown_names_are_copied_over_the_step_attending_them_most():
    """Exact values: source word 2 is an unknown name; steps 0, 1 and 3 attend it most, step 1 the most
    of the word steps (step 3 is punctuation); nothing else changes. Known or lower-case words are not copied."""
    from seq2seq_keras.decoding.unknown_words import replace_unknown_words

    ids = tf.constant([[9, 10, 11, 12, 3]])
    tokens = tf.constant([["it", "he", "failed", ".", "[END]"]])
    attention = tf.constant([[[0.1, 0.1, 0.8], [0.05, 0.05, 0.9], [0.8, 0.1, 0.1], [0.0, 0.05, 0.95], [0.2, 0.2, 0.6]]])
    words = tf.constant([["hace", "frio", "zorvak"]])
    source_ids = tf.constant([[7, 8, 1]])
    args = dict(source_ids=source_ids, copy_names=True)
    out, replaced = replace_unknown_words(
        ids, tokens, attention, words, source_name_like=tf.constant([[True, False, True]]), **args
    )
    assert [t.decode() for t in out.numpy()[0]] == ["it", "zorvak", "failed", ".", "[END]"]
    assert replaced.numpy().tolist() == [[False, True, False, False, False]]
    keys, values = tf.constant(["zorvak"]), tf.constant(["Zorvak"])
    out, _ = replace_unknown_words(
        ids, tokens, attention, words, True, keys, values, source_name_like=tf.constant([[True, False, True]]), **args
    )
    assert [t.decode() for t in out.numpy()[0]] == ["it", "Zorvak", "failed", ".", "[END]"]
    for name_like, known in (([[True, True, False]], [[7, 8, 1]]), ([[True, True, True]], [[7, 8, 6]])):
        out, replaced = replace_unknown_words(
            ids,
            tokens,
            attention,
            words,
            source_ids=tf.constant(known),
            source_name_like=tf.constant(name_like),
            copy_names=True,
        )
        assert not replaced.numpy().any()  # lower-case unknown word, or a known word: left alone
    out, replaced = replace_unknown_words(
        ids,
        tokens,
        attention,
        words,
        source_ids=source_ids,
        source_name_like=tf.constant([[True, False, True]]),
        copy_names=False,
    )
    assert not replaced.numpy().any()


def test_a_name_no_step_attends_most_is_written_next_to_the_step_attending_it_most():
    """Exact values: "trizudor" (unknown, capitalised) is the argmax only of [END], which never takes a
    name; of the other steps "in" attends it most, so it is written after "in"; when "." attends it
    most it is written before the punctuation; the dictionary applies; a name already out is left."""
    from seq2seq_keras.decoding.unknown_words import replace_unknown_words

    ids = tf.constant([[9, 10, 11, 4, 3]])
    tokens = tf.constant([["we", "in", "now", ".", "[END]"]])
    words = tf.constant([["estamos", "en", "trizudor", "ahora", "."]])
    args = dict(
        source_ids=tf.constant([[7, 8, 1, 9, 4]]),
        copy_names=True,
        source_name_like=tf.constant([[True, False, True, False, False]]),
    )
    rows = [
        [0.7, 0.1, 0.1, 0.05, 0.05],
        [0.1, 0.5, 0.3, 0.05, 0.05],
        [0.05, 0.05, 0.2, 0.6, 0.1],
        [0.0, 0.0, 0.1, 0.1, 0.8],
        [0.0, 0.0, 0.5, 0.0, 0.5],
    ]
    out, replaced = replace_unknown_words(ids, tokens, tf.constant([rows]), words, **args)
    assert [t.decode() for t in out.numpy()[0]] == ["we", "in trizudor", "now", ".", "[END]"]
    assert replaced.numpy().tolist() == [[False, True, False, False, False]]
    rows[3] = [0.0, 0.0, 0.4, 0.1, 0.5]
    out, replaced = replace_unknown_words(
        ids, tokens, tf.constant([rows]), words, True, tf.constant(["trizudor"]), tf.constant(["Trizudor"]), **args
    )
    assert [t.decode() for t in out.numpy()[0]] == ["we", "in", "now", "Trizudor .", "[END]"]
    assert replaced.numpy().tolist() == [[False, False, False, True, False]]
    out, replaced = replace_unknown_words(
        ids, tf.constant([["we", "trizudor", "now", ".", "[END]"]]), tf.constant([rows]), words, **args
    )
    assert not replaced.numpy().any()  # already in the output
    out, replaced = replace_unknown_words(ids, tokens, tf.constant([rows]), words, **dict(args, copy_names=False))
    assert not replaced.numpy().any()


def test_an_unknown_name_is_copied_end_to_end(tiny_model):
    from seq2seq_keras.decoding.pipeline import translate

    sentences = ["Zorvak 는 사과를 먹는다.", "나는 Zorvak 를 만났다", "그는 학생이다 Zorvak 1945"]
    plain = translate(tiny_model, sentences, copy_unknown_names=False)
    copied = translate(tiny_model, sentences)
    found = 0
    for p, c in zip(plain, copied):
        unknown = [j for j, w in enumerate(p.source_tokens) if w in ("zorvak", "1945")]
        arg = np.argmax(p.attention, axis=1)
        expected = list(p.target_tokens)
        words = [i for i in range(p.length) if p.target_tokens[i] != "[END]"]
        before, after = {}, {}
        for j in unknown:
            steps = [i for i in words if arg[i] == j and re.match(r"\w", p.target_tokens[i])]
            if steps:
                expected[max(steps, key=lambda i: (p.attention[i, j], -i))] = p.source_tokens[j]
            elif words and p.source_tokens[j] not in expected:  # nowhere: next to the step attending it most
                i = max(words, key=lambda i: (p.attention[i, j], -i))
                side = after if re.match(r"\w", p.target_tokens[i]) else before
                side.setdefault(i, []).append(p.source_tokens[j])
        for i in set(before) | set(after):
            expected[i] = " ".join(before.get(i, []) + [expected[i]] + after.get(i, []))
        assert c.target_tokens == expected and c.replaced == [a != b for a, b in zip(expected, p.target_tokens)]
        assert c.log_prob == p.log_prob
        found += sum(c.replaced)
    assert found >= 1


def test_replacement_changes_nothing_without_unk(tiny_model, sentences):
    from seq2seq_keras.decoding.pipeline import translate

    on, off = translate(tiny_model, sentences), translate(tiny_model, sentences, replace_unk=False)
    for a, b in zip(on, off):
        if "[UNK]" not in b.target_tokens:
            assert (a.text, a.target_tokens, a.replaced) == (b.text, b.target_tokens, [False] * b.length)


def test_subword_replacement_copies_whole_words(tmp_path_factory):
    """WordPiece: the copied word is the whole source word the attended piece belongs to, never a '##' piece."""
    model = forced_model(tiny_run_dir(tmp_path_factory, "subword"), "[UNK]")
    t = model.translate("그는 사과를 먹는다 xyzzyq 12345.")
    words = model.source_text.token_words(tf.constant(["그는 사과를 먹는다 xyzzyq 12345."])).to_list()[0]
    words = [w.decode() for w in words]
    assert len(words) == len(t.source_tokens)
    argmax_words = [words[j] for j in np.argmax(t.attention, axis=1)]
    # Each [UNK] became the whole word under its argmax; the number no step attends most (copied as
    # an unknown name/number) follows the step attending it most.
    assert [tok.split(" ")[0] for tok in t.target_tokens] == argmax_words
    extra = [tok.split(" ")[1:] for tok in t.target_tokens]
    assert sum(extra, []) == ([] if "12345" in argmax_words else ["12345"])
    assert all(not w.startswith("##") for tok in t.target_tokens for w in tok.split(" ")) and all(t.replaced)
