"""In-graph text processing: raw strings -> token ids -> readable text.

Everything here is built from TensorFlow and tensorflow-text ops, so the same
processing runs in a ``tf.data`` pipeline during training and inside an exported
SavedModel that takes raw strings (no Python at serving time).

Standardisation, in this order:

1. Control and format characters (NUL included) become spaces.
2. Unicode normalisation with ``tensorflow_text.normalize_utf8``. The form is
   chosen per language: ``NFKD`` (compatibility decomposition) is right for
   Latin scripts, where combining accents can then be stripped; **Korean must stay
   ``NFC``**, because NFKD splits every Hangul syllable (학) into its jamo
   (ᄒ ᅡ ᆨ) and the vocabulary would be built over letters, not syllables.
3. Optional accent stripping (removes combining marks, Unicode category ``Mn``).
4. Unicode-aware lower-casing (``tf.strings.lower(..., encoding="utf-8")``).
5. Every punctuation character (Unicode category ``P*``) becomes its own token.
6. Split on whitespace.

Token ids: ``0`` is padding, ``1`` ``[UNK]``, ``2`` ``[START]``, ``3`` ``[END]``;
the vocabulary follows, most frequent first. Unknown words map to ``[UNK]``;
lookup never raises.

Two vocabularies are available: ``word`` (default; one id per word) and
``subword`` (WordPiece, learned with tensorflow-text's
``bert_vocab_from_dataset``, applied with its ``WordpieceTokenizer``), which
keeps rare word forms (학생이다, 학생이었다, ...; estudiantes) out of ``[UNK]``
by sharing their pieces. See :class:`TextProcessor` for which wins where.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable, Sequence

import keras
import tensorflow as tf
import tensorflow_text as tf_text

PAD, UNK, START, END = "", "[UNK]", "[START]", "[END]"
RESERVED_TOKENS = (PAD, UNK, START, END)
PAD_ID, UNK_ID, START_ID, END_ID = 0, 1, 2, 3

#: Per-language defaults: (normalisation form, strip accents).
LANGUAGE_DEFAULTS = {
    "ko": ("NFC", False),
    "ja": ("NFC", False),
    "zh": ("NFC", False),
    "en": ("NFKD", True),
    "es": ("NFKD", True),
    "fr": ("NFKD", True),
    "de": ("NFKD", True),
}
_NORMALIZATION_FORMS = ("NFC", "NFKC", "NFD", "NFKD")
_PUNCTUATION_BEFORE_SPACE = r" ([.,!?;:)\]}%])"
#: Floor on how often a WordPiece piece must be seen (``min_frequency`` may raise it): the
#: learner's own default. On spa-eng (50,000 pairs, cap 8,000) it gives 2,581/2,033 pieces,
#: which scored 33.66 test BLEU against 32.40 for the 7,952/6,848 pieces of a floor of 1.
WORDPIECE_MIN_FREQUENCY = 10


@keras.saving.register_keras_serializable(package="seq2seq_keras")
class TextProcessor(keras.layers.Layer):
    """Standardise, tokenise and look up raw text; turn ids back into text.

    Shapes:
        ``encode``: ``string[batch]`` -> ``int64[batch, (len)]`` (ragged).
        ``call``: ``string[batch]`` -> ``int32[batch, len]`` (dense, 0-padded).
        ``detokenize``: ``int[batch, len]`` -> ``string[batch]``.

    Words or subwords (``subword=True``, WordPiece): pieces continue a word
    with a ``##`` prefix (``"estudiantes"`` -> ``["estudiante", "##s"]``);
    :meth:`detokenize` joins them (no ``##`` is ever shown, punctuation is
    spaced as in word mode, Korean stays NFC), :meth:`token_words` gives the
    whole word of every piece (unknown-word replacement copies words, not
    pieces) and :func:`readable_pieces` labels heatmaps ``"stud-" "-ent"``.
    Measured on spa-eng (docs/data.md, "Words or subwords"; same model, same 2
    epochs of 751 steps on 50,000 pairs, greedy) WordPiece reads better
    (test BLEU 33.66 vs 31.37 for words; longest test sentences 29.2 vs 23.6)
    but copies no unseen name or number (0% vs 94.9%; swapped-name BLEU 10.8
    vs 20.4): a new name is spelled with known pieces, so it is never
    ``[UNK]`` and never copied, and the model invents a word instead. Words
    are the default (the CLI's too).

    Args:
        vocabulary: tokens after the reserved ones, most frequent first; or
            ``None`` until :meth:`adapt` is called. Reserved tokens given here are
            ignored (they always come first, in the fixed order).
        language: ISO code used for defaults (``"ko"`` keeps NFC).
        normalization: one of NFC, NFKC, NFD, NFKD; defaults by language.
        strip_accents: drop combining marks after normalisation.
        lowercase: Unicode lower-casing.
        add_start_end: wrap each sequence in ``[START]`` ... ``[END]`` (target side).
        subword: use a WordPiece vocabulary instead of whole words.
        max_tokens: vocabulary size cap for :meth:`adapt`, reserved tokens
            included (WordPiece: the learner aims within 5% under it unless the
            frequency floor stops it first; every character seen is kept, alone
            and as ``##c``, even past it).
        min_frequency: minimum count for a word to enter the vocabulary; for a
            WordPiece piece, ``max(min_frequency, WORDPIECE_MIN_FREQUENCY)`` (10).
        max_length: truncate each sequence to this many tokens (``[START]`` and
            ``[END]`` included); ``None`` keeps everything.
    """

    def __init__(
        self,
        vocabulary: Sequence[str] | None = None,
        *,
        language: str = "en",
        normalization: str | None = None,
        strip_accents: bool | None = None,
        lowercase: bool = True,
        add_start_end: bool = False,
        subword: bool = False,
        max_tokens: int | None = None,
        min_frequency: int = 1,
        max_length: int | None = None,
        **kwargs,
    ):
        kwargs.setdefault("trainable", False)
        super().__init__(**kwargs)
        default_form, default_strip = LANGUAGE_DEFAULTS.get(language, ("NFC", False))
        normalization = (normalization or default_form).upper()
        if normalization not in _NORMALIZATION_FORMS:
            raise ValueError(
                f"normalization={normalization!r} is not a Unicode form; use one of {_NORMALIZATION_FORMS}."
            )
        if language == "ko" and normalization in ("NFD", "NFKD"):
            raise ValueError(
                f"normalization={normalization!r} splits Hangul syllables into jamo; use NFC (or NFKC) for Korean."
            )
        if max_tokens is not None and max_tokens <= len(RESERVED_TOKENS):
            raise ValueError(f"max_tokens must be > {len(RESERVED_TOKENS)} (reserved tokens), got {max_tokens}.")
        if max_length is not None and max_length < (3 if add_start_end else 1):
            raise ValueError(f"max_length={max_length} leaves no room for a token.")
        self.language = language
        self.normalization = normalization
        self.strip_accents = default_strip if strip_accents is None else bool(strip_accents)
        self.lowercase = bool(lowercase)
        self.add_start_end = bool(add_start_end)
        self.subword = bool(subword)
        self.max_tokens = max_tokens
        self.min_frequency = int(min_frequency)
        self.max_length = max_length
        self._vocabulary: list[str] | None = None
        if vocabulary is not None:
            self.set_vocabulary(vocabulary)

    @classmethod
    def for_language(cls, language: str, **kwargs) -> TextProcessor:
        """A processor with the defaults for ``language`` (e.g. ``"ko"``, ``"en"``)."""
        return cls(language=language, **kwargs)

    # ------------------------------------------------------------------ vocabulary
    @property
    def vocabulary(self) -> list[str]:
        """All tokens by id, the reserved ones first."""
        self._require_vocabulary()
        return list(self._vocabulary)

    @property
    def vocabulary_size(self) -> int:
        self._require_vocabulary()
        return len(self._vocabulary)

    def set_vocabulary(self, tokens: Iterable[str]) -> None:
        """Install a vocabulary (reserved tokens are put first automatically)."""
        seen = set(RESERVED_TOKENS)
        vocab = list(RESERVED_TOKENS)
        for token in tokens:
            token = token.decode("utf-8") if isinstance(token, bytes) else str(token)
            if token not in seen:
                seen.add(token)
                vocab.append(token)
        self._vocabulary = vocab
        # Tables are tracked as attributes of this layer, so a tf.Module that
        # holds the layer exports them with the SavedModel.
        self._vocab_tensor = tf.constant(vocab, dtype=tf.string)
        self._lookup_table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                keys=tf.constant(vocab, tf.string),
                values=tf.range(len(vocab), dtype=tf.int64),
            ),
            default_value=UNK_ID,
        )
        if self.subword:
            self._wordpiece = tf_text.WordpieceTokenizer(
                self._lookup_table,
                suffix_indicator="##",
                max_bytes_per_word=100,
                token_out_type=tf.int64,
                unknown_token=UNK,
            )

    def adapt(self, texts: Iterable[str] | tf.data.Dataset, batch_size: int = 1024) -> TextProcessor:
        """Build the vocabulary from raw texts (a list of str or a string dataset)."""
        if isinstance(texts, tf.data.Dataset):
            dataset = texts
        else:
            texts = list(texts)
            if not texts:
                raise ValueError("adapt() got no texts: pass the training sentences of this side.")
            dataset = tf.data.Dataset.from_tensor_slices(tf.constant(texts, tf.string))
        words = dataset.batch(batch_size).map(self.tokenize_words, num_parallel_calls=tf.data.AUTOTUNE)
        if self.subword:
            self._adapt_wordpiece(words)
        else:
            counts: collections.Counter = collections.Counter()
            for batch in words:
                counts.update(batch.flat_values.numpy().tolist())
            ranked = sorted(
                ((tok.decode("utf-8"), n) for tok, n in counts.items() if n >= self.min_frequency),
                key=lambda item: (-item[1], item[0]),
            )
            limit = None if self.max_tokens is None else self.max_tokens - len(RESERVED_TOKENS)
            self.set_vocabulary(tok for tok, _ in ranked[:limit] if tok not in RESERVED_TOKENS)
        return self

    def _adapt_wordpiece(self, words: tf.data.Dataset) -> None:
        from tensorflow_text.tools.wordpiece_vocab import bert_vocab_from_dataset as bvfd

        size = self.max_tokens or 8000
        # Batches of words, not one word per element: the same counts (the learner flattens
        # each element), without tf.data's per-element cost (27 s -> 17 s on 6,000 sentences).
        # The learner searches the piece-count threshold between the floor and the top count
        # for a vocabulary just under `size`; a small corpus stops at the floor, under `size`.
        vocab = bvfd.bert_vocab_from_dataset(
            words.map(lambda w: w.flat_values),
            vocab_size=size,
            reserved_tokens=[t for t in RESERVED_TOKENS if t],
            bert_tokenizer_params={"lower_case": False},
            learn_params={"upper_thresh": 10_000_000, "lower_thresh": max(self.min_frequency, WORDPIECE_MIN_FREQUENCY)},
        )
        self.set_vocabulary(_cap_wordpiece_vocabulary(vocab, size))

    def _require_vocabulary(self) -> None:
        if self._vocabulary is None:
            raise ValueError("This TextProcessor has no vocabulary yet: call .adapt(texts) or pass vocabulary=[...].")

    # ------------------------------------------------------------------ text -> tokens
    def standardize(self, strings: tf.Tensor, lowercase: bool | None = None) -> tf.Tensor:
        """``string[batch]`` -> ``string[batch]``, normalised and punctuation-spaced.

        Invalid UTF-8 is replaced (U+FFFD) rather than raising, so any bytes give a
        defined result. ``lowercase=False`` keeps the capitals (same tokens otherwise).
        """
        strings = tf.convert_to_tensor(strings, dtype=tf.string)
        strings = tf.strings.unicode_transcode(
            strings, "UTF-8", "UTF-8", errors="replace", replace_control_characters=False
        )
        # Control characters go first: normalize_utf8 stops reading at a NUL byte.
        strings = tf.strings.regex_replace(strings, r"[\p{Cc}\p{Cf}]", " ")
        strings = tf_text.normalize_utf8(strings, self.normalization)
        if self.strip_accents:
            strings = tf.strings.regex_replace(strings, r"\p{Mn}", "")
        if self.lowercase if lowercase is None else lowercase:
            strings = tf.strings.lower(strings, encoding="utf-8")
        strings = tf.strings.regex_replace(strings, r"(\pP)", r" \1 ")
        return tf.strings.strip(strings)

    def tokenize_words(self, strings: tf.Tensor, lowercase: bool | None = None) -> tf.RaggedTensor:
        """``string[batch]`` -> ``string[batch, (words)]`` after :meth:`standardize`."""
        return tf.strings.split(self.standardize(strings, lowercase))

    def tokenize(self, strings: tf.Tensor) -> tf.RaggedTensor:
        """``string[batch]`` -> ``string[batch, (tokens)]``: words, or word pieces.

        Out-of-vocabulary words come back as themselves in word mode (so a heatmap
        can show the user's word) and as ``[UNK]`` in subword mode. No specials.
        """
        words = self.tokenize_words(strings)
        if not self.subword:
            return self._truncate(words, specials=False)
        ids = self._lookup_ids(words)
        return tf.gather(self._vocab_tensor, ids)

    def token_words_as_written(self, strings: tf.Tensor) -> tf.RaggedTensor:
        """:meth:`token_words` without lower-casing (the same tokens, the writer's capitals kept).

        Used to tell names and numbers ("Zorvak", "1945") from other unknown words.
        """
        if not self.lowercase:
            return self.token_words(strings)
        words = self.tokenize_words(strings, lowercase=False)
        if not self.subword:
            return self._truncate(words, specials=False)
        # Pieces come from the lower-cased words (the vocabulary's); each piece gets its cased word.
        pieces = self._wordpiece.tokenize(self.tokenize_words(strings))
        word_of_piece = tf.gather(words.flat_values, pieces.values.value_rowids())
        per_sentence = tf.RaggedTensor.from_row_splits(
            word_of_piece, tf.gather(pieces.values.row_splits, pieces.row_splits)
        )
        return self._truncate(per_sentence, specials=False)

    def token_words(self, strings: tf.Tensor) -> tf.RaggedTensor:
        """``string[batch]`` -> ``string[batch, (tokens)]``: the whole word each token comes from.

        Aligned with :meth:`tokenize` (and :meth:`encode` without specials): in
        word mode the words themselves; in subword mode every piece of a word
        gives that word, as written after standardisation (unknown-word
        replacement copies words, not pieces).
        """
        words = self.tokenize_words(strings)
        if not self.subword:
            return self._truncate(words, specials=False)
        self._require_vocabulary()
        pieces = self._wordpiece.tokenize(words)  # [batch, (words), (pieces)]
        word_of_piece = tf.gather(words.flat_values, pieces.values.value_rowids())
        per_sentence = tf.RaggedTensor.from_row_splits(
            word_of_piece, tf.gather(pieces.values.row_splits, pieces.row_splits)
        )
        return self._truncate(per_sentence, specials=False)

    def unknown_mask(self, strings: tf.Tensor) -> tf.RaggedTensor:
        """``string[batch]`` -> ``bool[batch, (tokens)]``: True where the vocabulary has no entry for the token.

        Those tokens are ``[UNK]`` (id ``UNK_ID``) to the model. Aligned with
        :meth:`tokenize`, :meth:`token_words` and :meth:`encode` without
        ``[START]``/``[END]``: the same standardisation (NFC for Korean, ...),
        pieces and truncation as the model's input. A word vocabulary gives one
        token per word; WordPiece gives ``[UNK]`` for a word it cannot spell with
        its pieces (a character it never saw in training).

        Raises:
            ValueError: the processor has no vocabulary yet.
        """
        return tf.equal(self._lookup_ids(self.tokenize_words(strings)), UNK_ID)

    def unknown_words(self, strings: tf.Tensor) -> tf.RaggedTensor:
        """``string[batch]`` -> ``string[batch, (unknown)]``: the words the model reads as ``[UNK]``, in order.

        The word of every token :meth:`unknown_mask` marks (repeats kept), as
        :meth:`token_words` writes it (standardised: lower-cased, NFC, ...), so
        ``TextProcessor.for_language("ko").adapt(...).unknown_words(["오늘 날씨"]).to_list()``
        lists the Korean words outside the vocabulary.

        Raises:
            ValueError: the processor has no vocabulary yet.
        """
        return tf.ragged.boolean_mask(self.token_words(strings), self.unknown_mask(strings))

    def _lookup_ids(self, words: tf.RaggedTensor) -> tf.RaggedTensor:
        self._require_vocabulary()
        if self.subword:
            pieces = self._wordpiece.tokenize(words)  # [batch, (words), (pieces)]
            ids = pieces.merge_dims(-2, -1)
        else:
            ids = tf.ragged.map_flat_values(self._lookup_table.lookup, words)
        return self._truncate(ids, specials=False)

    def _truncate(self, ragged: tf.RaggedTensor, specials: bool) -> tf.RaggedTensor:
        if self.max_length is None:
            return ragged
        room = self.max_length - (2 if (self.add_start_end and not specials) else 0)
        return ragged[:, :room]

    def encode(self, strings: tf.Tensor) -> tf.RaggedTensor:
        """``string[batch]`` -> ``int64[batch, (len)]`` token ids (ragged).

        With ``add_start_end`` each row is ``[START] ... [END]``.
        """
        ids = self._lookup_ids(self.tokenize_words(strings))
        if self.add_start_end:
            batch = ids.nrows()
            starts = tf.fill([batch, 1], tf.constant(START_ID, tf.int64))
            ends = tf.fill([batch, 1], tf.constant(END_ID, tf.int64))
            ids = tf.concat([starts, ids, ends], axis=1)
        return ids

    def __call__(self, strings, *args, **kwargs):
        if not isinstance(strings, (tf.Tensor, tf.RaggedTensor, keras.KerasTensor)):
            strings = tf.constant(strings, dtype=tf.string)
        return super().__call__(strings, *args, **kwargs)

    def call(self, strings):
        """``string[batch]`` -> ``int32[batch, len]`` dense ids, 0-padded."""
        return tf.cast(self.encode(strings).to_tensor(default_value=PAD_ID), tf.int32)

    # ------------------------------------------------------------------ ids -> text
    def ids_to_tokens(self, ids) -> tf.Tensor:
        """``int[..., len]`` -> ``string[..., len]`` (padding becomes ``""``)."""
        self._require_vocabulary()
        ids = tf.convert_to_tensor(ids)
        ids = tf.clip_by_value(tf.cast(ids, tf.int64), 0, len(self._vocabulary) - 1)
        return tf.gather(self._vocab_tensor, ids)

    def detokenize(self, ids) -> tf.Tensor:
        """``int[batch, len]`` (dense or ragged) -> ``string[batch]`` readable text.

        Padding, ``[START]`` and ``[END]`` are dropped; reading stops at the first
        ``[END]``; word pieces are joined; no space is left before closing
        punctuation, nor around word-internal apostrophes and hyphens.
        """
        self._require_vocabulary()
        if isinstance(ids, tf.RaggedTensor):
            ids = ids.to_tensor(default_value=PAD_ID)
        ids = tf.cast(tf.convert_to_tensor(ids), tf.int64)
        ended = tf.cumsum(tf.cast(tf.equal(ids, END_ID), tf.int32), axis=-1) > 0
        keep = tf.logical_and(tf.logical_not(ended), ids > END_ID)
        keep = tf.logical_or(keep, tf.logical_and(tf.logical_not(ended), tf.equal(ids, UNK_ID)))
        kept = tf.ragged.boolean_mask(ids, keep)
        tokens = tf.ragged.map_flat_values(self.ids_to_tokens, kept)
        text = tf.strings.reduce_join(tokens, axis=-1, separator=" ")
        if self.subword:
            text = join_pieces(text)
        return join_words(text)

    # ------------------------------------------------------------------ Keras plumbing
    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (None,)

    def get_config(self):
        config = super().get_config()
        config.update(
            vocabulary=None if self._vocabulary is None else self._vocabulary[len(RESERVED_TOKENS) :],
            language=self.language,
            normalization=self.normalization,
            strip_accents=self.strip_accents,
            lowercase=self.lowercase,
            add_start_end=self.add_start_end,
            subword=self.subword,
            max_tokens=self.max_tokens,
            min_frequency=self.min_frequency,
            max_length=self.max_length,
        )
        return config


def _cap_wordpiece_vocabulary(vocab: Sequence[str], size: int) -> list[str]:
    """The learner's vocabulary cut to ``size`` tokens, reserved ones included.

    The learner can overshoot its target by the granularity of its threshold
    search. Every single character, alone and as ``##c``, is kept (without them
    a word with that letter becomes ``[UNK]``); the learned pieces, which the
    learner lists most frequent first, fill the remaining room.
    """
    reserved = [t for t in RESERVED_TOKENS if t]
    rest = [t for t in vocab if t not in reserved]
    characters = [t for t in rest if len(t.removeprefix("##")) == 1]
    learned = [t for t in rest if len(t.removeprefix("##")) != 1]
    room = max(size - len(RESERVED_TOKENS) - len(characters), 0)
    return characters + learned[:room]


def join_pieces(text: tf.Tensor) -> tf.Tensor:
    """Join space-separated WordPiece tokens ``string[batch]`` into words.

    A continuation piece (``##ent``) is glued to the token before it
    (``"stud ##ent"`` -> ``"student"``); one with nothing before it (a
    hypothesis that starts with a continuation) loses its ``##`` rather than
    showing it. Pieces are whole Unicode characters of NFC text, so Hangul
    syllables stay NFC. Apply :func:`join_words` afterwards for punctuation.
    """
    return tf.strings.regex_replace(text, r"^##| ##", "")


def readable_pieces(tokens: Sequence[str]) -> list[str]:
    """Token strings -> heatmap labels that show which pieces make one word.

    WordPiece marks a continuation with a leading ``##`` and leaves the start
    of a split word unmarked, so ``["stud", "##ent"]`` reads as the word "stud"
    and a stray "##ent". The label marks both sides of every join with a
    hyphen, the way grammars write stems and endings: ``["stud-", "-ent"]``
    (``["학생-", "-이었-", "-다"]``). Tokenisation splits every punctuation
    character off as its own token, so a hyphen glued to letters never occurs
    in a real token and cannot be mistaken for one. Whole words, punctuation and
    specials are unchanged, so word-vocabulary labels come back as they were.
    """
    labels = []
    for i, token in enumerate(tokens):
        label = "-" + token[2:] if token.startswith("##") and len(token) > 2 else token
        following = tokens[i + 1] if i + 1 < len(tokens) else ""
        if token and following.startswith("##") and len(following) > 2:
            label += "-"
        labels.append(label)
    return labels


def join_words(text: tf.Tensor) -> tf.Tensor:
    """Tidy space-joined words ``string[batch]`` into readable text.

    No space before closing punctuation or after opening ``¿ ¡ ( [ {``, and
    word-internal apostrophes and hyphens (split off as punctuation by
    tokenisation) are rejoined: ``"we ' ve"`` -> ``"we've"``.
    """
    text = tf.strings.regex_replace(text, _PUNCTUATION_BEFORE_SPACE, r"\1")
    text = tf.strings.regex_replace(text, r"([\pL\pN]) (['’-]) ([\pL\pN])", r"\1\2\3")
    return tf.strings.regex_replace(text, r"([¿¡(\[{]) ", r"\1")
