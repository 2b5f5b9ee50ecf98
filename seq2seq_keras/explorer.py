"""The attention explorer: a web page where a sentence is translated and its attention pointed at.

``seq2seq-keras explore --model runs/demo`` (a run folder, through the Python API) or
``seq2seq-keras explore --server http://localhost:8501 --model-name demo`` (a running TF
Serving, through :class:`~seq2seq_keras.serving.client.RestClient`: the page shows what the
deployed SavedModel answers) serves one page on 127.0.0.1. A user types a sentence and sees:

* the translation, copied unknown words (``*``) and out-of-vocabulary source words (``?``) marked;
* the alignment: hovering (or tapping) an output word lights its source words up by weight, the
  one it attended to most outlined (the argmax of its attention row, what unknown-word replacement
  copies from); hovering a source word lights up the output words that read it;
* the heatmap, exact weights on hover;
* beam search's alternatives with their scores, each with its own attention;
* a Transformer's cross-attention per layer and head (the export's ``attention_heads``);
* the decoding controls: method, beam width, the unknown-word options.

Both back ends return :class:`~seq2seq_keras.translation.Translation` objects, so the page is drawn
the same way whoever translated. Bad input (empty, too long, control characters, text that is not
valid UTF-8) and faults (a server that is down or slow, a model without attention) become a one-line
message on the page, never a traceback.

The page is built with Gradio (the ML ecosystem's convention for model demos; it renders inline in
Jupyter and Colab), an optional extra: ``pip install 'seq2seq_keras[explore]'``. This module imports
Gradio only when an app is built, and neither TensorFlow nor Keras itself: the local back end is
handed a loaded model, the REST back end needs only HTTP and NumPy. The HTML it draws
(:func:`alignment_html`, :func:`heatmap_html`) is plain Python: the hover highlighting is CSS
(``:has(:hover)`` rules written per output word), so it needs no script in the page.
"""

from __future__ import annotations

import dataclasses
import html
import itertools
import os
import unicodedata
import warnings

import numpy as np

from .decoding.options import DEFAULT_BEAM_WIDTH, DEFAULT_MAX_SOURCE_LENGTH, DecodingOptions
from .translation import Translation

#: The sentence the page opens with (the package's running example).
DEFAULT_SENTENCE = "나는 학생이다"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
#: Seconds the REST back end waits for TF Serving's answer before it says the server is slow.
DEFAULT_TIMEOUT = 10.0
#: Characters a sentence may have: longer input is refused before it reaches a model (the model itself
#: reads at most ``max_source_length`` tokens and cuts the rest, which the page says).
MAX_CHARACTERS = 2000
#: Beam alternatives shown besides the best hypothesis (at most the beam width minus one).
ALTERNATIVES = 3
INSTALL_HINT = "pip install 'seq2seq_keras[explore]'"


class ExplorerError(Exception):
    """Something the page says in one line instead of translating (bad input, a server fault)."""


# ---------------------------------------------------------------------- input checks
def check_sentence(text, max_characters: int = MAX_CHARACTERS) -> str:
    """The sentence to translate, tabs and line breaks made spaces; :class:`ExplorerError` says what is wrong.

    Refused: nothing but white space; text that is not valid UTF-8 (undecodable bytes, lone surrogates,
    U+FFFD from a lenient decoder); control characters (Unicode category Cc) other than tabs and line
    breaks; more than ``max_characters`` characters.
    """
    if text is None:
        text = ""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise ExplorerError(
                "The sentence is not valid UTF-8 text: retype it or paste it from another source."
            ) from None
    text = str(text)
    if "\ufffd" in text or any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        raise ExplorerError(
            "The sentence holds bytes that are not valid UTF-8 text (shown as \ufffd): retype those characters."
        )
    text = text.replace("\r\n", " ").replace("\t", " ").replace("\n", " ").replace("\r", " ")
    controls = sorted({c for c in text if unicodedata.category(c) == "Cc"})
    if controls:
        codes = ", ".join(f"U+{ord(c):04X}" for c in controls[:5])
        raise ExplorerError(f"The sentence holds control characters ({codes}): remove them and translate again.")
    text = text.strip()
    if not text:
        raise ExplorerError("Type a sentence to translate: the box is empty.")
    if len(text) > max_characters:
        raise ExplorerError(
            f"The sentence is {len(text)} characters long; the explorer takes at most {max_characters}. "
            "Translate it a sentence at a time."
        )
    return text


def first_line(error: BaseException) -> str:
    """An exception as one short line (its type where it has no message): what the page shows of a fault."""
    text = " ".join(str(error).split())
    if len(text) > 300:
        text = text[:297] + "..."
    return text or type(error).__name__


# ---------------------------------------------------------------------- what the page asks a back end
@dataclasses.dataclass(frozen=True)
class Request:
    """The page's controls: how to decode one sentence."""

    method: str = "greedy"
    beam_width: int = DEFAULT_BEAM_WIDTH
    replace_unk: bool = True
    copy_unknown_names: bool = True

    def decoding_options(self) -> dict:
        """The :class:`~seq2seq_keras.decoding.options.DecodingOptions` keywords (checked there)."""
        options = dict(method=self.method, replace_unk=self.replace_unk, copy_unknown_names=self.copy_unknown_names)
        if self.method == "beam":
            width = int(self.beam_width)
            options.update(beam_width=width, n_best=max(1, min(width, ALTERNATIVES + 1)))
        return options


@dataclasses.dataclass
class Result:
    """One answer: the best translation (alternatives inside it), the heads, and notes for the reader."""

    translation: Translation
    heads: np.ndarray | None = None  # [layers, heads, target, source], a Transformer's cross-attention
    notes: list[str] = dataclasses.field(default_factory=list)


class LocalBackend:
    """A model in this process (a run folder loaded by the caller): ``model.translate`` with the page's options."""

    def __init__(self, model, label: str = "local model"):
        self.model = model
        self.label = label
        self.has_attention = bool(getattr(model, "has_attention", True))
        self.transformer = getattr(model, "architecture", "rnn") == "transformer"
        self.max_source_length = DecodingOptions().max_source_length
        self.fixed_options = False  # every control applies

    def describe(self) -> str:
        kind = "Transformer" if self.transformer else "recurrent"
        return f"{self.label}: a {kind} model in this process, translated with the Python API (model.translate)"

    def translate(self, sentence: str, request: Request) -> Result:
        try:
            translation = self.model.translate([sentence], **request.decoding_options())[0]
        except (TypeError, ValueError) as e:
            raise ExplorerError(first_line(e)) from None
        heads = self._heads(sentence, request) if self.transformer and self.has_attention else None
        return Result(translation, heads)

    def _heads(self, sentence: str, request: Request) -> np.ndarray | None:
        """A Transformer's cross-attention per layer and head of the best hypothesis (what the export returns)."""
        import tensorflow as tf

        from .decoding.pipeline import translate_graph

        text = tf.constant([sentence])
        options = {"beam_width": int(request.beam_width)} if request.method == "beam" else {}
        out = translate_graph(self.model, text, DecodingOptions().max_length, method=request.method, **options)
        heads = np.asarray(self.model.attention_heads(text, out)[0], dtype=np.float32)
        return heads[:, :, : int(out["target_length"][0]), : int(out["source_length"][0])]


class ServedBackend:
    """An export's signatures, answered by ``predict(texts, signature) -> {output name: array}``.

    Greedy search asks the ``translate_with_attention`` signature, beam search ``beam_search``: the export
    fixed each signature's options (beam width, unknown-word handling), so the page says they do not apply.
    :class:`RestBackend` is TF Serving's REST API; :class:`SessionBackend` TF Serving's own loader in this
    process (a notebook without a server).
    """

    fixed_options = True
    has_attention = True  # known per answer: an export of a model without attention answers all-zero weights

    def __init__(self, predict, label: str, max_source_length: int = DEFAULT_MAX_SOURCE_LENGTH):
        self._predict = predict
        self.label = label
        self.transformer = False
        self.max_source_length = max_source_length

    def describe(self) -> str:
        return self.label

    def _fault(self, error: BaseException) -> str:
        return f"{self.label} did not translate: {first_line(error)}"

    def translate(self, sentence: str, request: Request) -> Result:
        from .translation import results_to_translations

        signature = "beam_search" if request.method == "beam" else "translate_with_attention"
        try:
            outputs = self._predict([sentence], signature)
        except ExplorerError:
            raise
        except Exception as e:  # the server's or the loader's error, as one line
            raise ExplorerError(self._fault(e)) from None
        try:
            translation = results_to_translations(outputs, [sentence])[0]
        except (KeyError, ValueError, IndexError) as e:
            raise ExplorerError(
                f"The answer of {self.label} lacks what the explorer reads ({first_line(e)}): "
                "was the model exported by seq2seq-keras export?"
            ) from None
        translation.alternatives = _served_alternatives(outputs, translation)
        heads = outputs.get("attention_heads")
        if heads is not None:
            self.transformer = True
            t, s = len(translation.target_tokens), len(translation.source_tokens)
            heads = np.asarray(heads, dtype=np.float32)[0][:, :, :t, :s]
        return Result(translation, heads)


class RestBackend(ServedBackend):
    """A running TF Serving through the package's :class:`~seq2seq_keras.serving.client.RestClient`: what the
    deployed SavedModel answers. ``timeout``: seconds per request; a server that is down or slower gets a
    message on the page, not a hang. ``client``: a client already made (its URL, model, version and timeout)."""

    def __init__(
        self,
        url: str,
        model_name: str,
        version: int | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_source_length: int = DEFAULT_MAX_SOURCE_LENGTH,
        client=None,
    ):
        from .serving.client import RestClient

        self.client = client or RestClient(url, model_name, version=version, timeout=timeout)
        self.url, self.model_name, self.timeout = self.client.base_url, self.client.model_name, self.client.timeout
        label = f"TF Serving at {self.url}, model {self.model_name!r}"
        super().__init__(self.client.predict, label, max_source_length)

    def describe(self) -> str:
        return f"{self.label}, through its REST API (what the deployed SavedModel answers)"

    def _fault(self, error: BaseException) -> str:
        text = first_line(error)
        lower = text.lower()
        if "timed out" in lower or "timeout" in lower:
            return (
                f"{self.label} did not answer within {self.timeout:g} s: it is busy or stuck. Try again, "
                "or raise --timeout."
            )
        if "refused" in lower or "failed to establish" in lower or "max retries" in lower:
            return f"{self.label} cannot be reached: is tensorflow_model_server running with --rest_api_port? ({text})"
        return f"{self.label} did not translate: {text}"


class SessionBackend(ServedBackend):
    """An export run by TF Serving's own loader in this process
    (:class:`~seq2seq_keras.serving.tf_serving_loader.ServingSession`): the answers a server would give."""

    def __init__(self, session, label: str = "the export, through TF Serving's loader (TensorFlow's C API)"):
        def predict(texts, signature):
            return session.run(signature, {"text": np.array(texts, dtype=object)})

        super().__init__(predict, label)


def _served_alternatives(outputs, best: Translation) -> list[Translation]:
    """The ``beam_search`` signature's other hypotheses: their text and score (the export returns no tokens or
    attention for them, so ``attention`` is ``None``)."""
    if "beams_translation" not in outputs:
        return []
    from .translation import to_python_strings

    texts = to_python_strings(np.asarray(outputs["beams_translation"]))[0]
    scores = np.asarray(outputs["beams_score"], dtype=np.float32)[0]
    count = int(np.asarray(outputs["beams_count"]).reshape(-1)[0])
    return [
        Translation(best.source, texts[k], [], [], None, float("nan"), score=float(scores[k]))
        for k in range(1, min(count, ALTERNATIVES + 1, len(texts)))
    ]


# ---------------------------------------------------------------------- what the page shows
_ids = itertools.count()


def argmax_source(attention: np.ndarray | None) -> list[int]:
    """For each output word, the source word it attended to most (the argmax of its attention row)."""
    if attention is None or np.size(attention) == 0:
        return []
    return [int(j) for j in np.asarray(attention).argmax(axis=1)]


def has_weights(translation: Translation) -> bool:
    """Whether the translation carries attention to show (a model without attention has none, or all zeros)."""
    a = translation.attention
    return a is not None and np.size(a) > 0 and bool(np.any(np.asarray(a) > 0))


def _shown_tokens(translation: Translation) -> tuple[list[str], list[str]]:
    """Source and target tokens as the page labels them: ``?`` after an unknown source word, ``*`` after a copy."""
    unknown = translation.unknown_source or [False] * len(translation.source_tokens)
    words = iter(translation.unknown_source_words)
    source = [f"{next(words, s)}?" if u else s for s, u in zip(translation.source_tokens, unknown)]
    replaced = translation.replaced or [False] * len(translation.target_tokens)
    target = [f"{t}*" if r else t for t, r in zip(translation.target_tokens, replaced)]
    return source, target


def _colour(weight: float) -> str:
    return f"rgba(234, 88, 12, {min(max(float(weight), 0.0), 1.0):.3f})"


def alignment_html(translation: Translation) -> str:
    """The translation over its source, linked by attention: hover an output word and its source words light
    up by weight, the one with the largest weight outlined; hover a source word and the output words that read
    it light up. Plain HTML and CSS (rules written per word), so it works wherever the HTML is shown."""
    source, target = _shown_tokens(translation)
    box = f"s2s-align-{next(_ids)}"
    attention = np.asarray(translation.attention, dtype=np.float64) if has_weights(translation) else None
    rules = []
    if attention is not None:
        top = argmax_source(attention)
        for i in range(attention.shape[0]):
            hover = f"#{box}:has(.s2s-tgt[data-i='{i}']:is(:hover,:focus))"
            rules.append(f"{hover} .s2s-tgt[data-i='{i}'] {{ outline: 2px solid #1d4ed8; }}")
            for j in range(attention.shape[1]):
                style = f"background-color: {_colour(attention[i, j])};"
                if j == top[i]:
                    style += " outline: 3px solid #c2410c;"
                rules.append(f"{hover} .s2s-src[data-j='{j}'] {{ {style} }}")
        for j in range(attention.shape[1]):
            hover = f"#{box}:has(.s2s-src[data-j='{j}']:is(:hover,:focus))"
            rules.append(f"{hover} .s2s-src[data-j='{j}'] {{ outline: 2px solid #1d4ed8; }}")
            for i in range(attention.shape[0]):
                rules.append(f"{hover} .s2s-tgt[data-i='{i}'] {{ background-color: {_colour(attention[i, j])}; }}")

    def title_of_target(i: int) -> str:
        if attention is None:
            return "no attention weights"
        return "attends to " + ", ".join(f"{source[j]} {attention[i, j]:.2f}" for j in np.argsort(-attention[i])[:3])

    def title_of_source(j: int) -> str:
        note = " (outside the model's vocabulary: read as [UNK])" if source[j].endswith("?") else ""
        return f"source word {j + 1}{note}"

    targets = "".join(
        f"<span class='s2s-tok s2s-tgt{' s2s-copied' if tok.endswith('*') else ''}' data-i='{i}' tabindex='0' "
        f"title='{html.escape(title_of_target(i), quote=True)}'>{html.escape(tok)}</span>"
        for i, tok in enumerate(target)
    )
    sources = "".join(
        f"<span class='s2s-tok s2s-src{' s2s-unknown' if tok.endswith('?') else ''}' data-j='{j}' tabindex='0' "
        f"title='{html.escape(title_of_source(j), quote=True)}'>{html.escape(tok)}</span>"
        for j, tok in enumerate(source)
    )
    hint = (
        "Hover or tap an output word: its source words light up by attention weight, the strongest outlined."
        if attention is not None
        else "This model has no attention: there are no weights to show."
    )
    return (
        f"<div class='s2s-alignment' id='{box}'><style>{' '.join(rules)}</style>"
        f"<div class='s2s-line'><span class='s2s-label'>translation</span>{targets}</div>"
        f"<div class='s2s-line'><span class='s2s-label'>source</span>{sources}</div>"
        f"<p class='s2s-hint'>{html.escape(hint)}</p></div>"
    )


def heatmap_html(translation: Translation, caption: str = "") -> str:
    """The attention matrix as an HTML table: rows output words, columns source words, shade the weight,
    the exact weight on hover. Empty when the translation has no attention."""
    if not has_weights(translation):
        return ""
    source, target = _shown_tokens(translation)
    attention = np.asarray(translation.attention, dtype=np.float64)
    head = "".join(f"<th class='s2s-col'>{html.escape(s)}</th>" for s in source)
    rows = []
    for i, tok in enumerate(target):
        cells = "".join(
            f"<td{' class=s2s-dark' if w > 0.6 else ''} style='background-color: {_colour(w)}' "
            f"title='{html.escape(f'{tok} ← {source[j]}: {w:.4f}', quote=True)}'>{w:.2f}</td>"
            for j, w in enumerate(attention[i])
        )
        rows.append(f"<tr><th class='s2s-row'>{html.escape(tok)}</th>{cells}</tr>")
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return f"<table class='s2s-heatmap'>{cap}<tr><th></th>{head}</tr>{''.join(rows)}</table>"


def alternatives_html(translation: Translation) -> str:
    """Beam search's hypotheses, best first, with score and log-probability, each with its own heatmap."""
    if not translation.alternatives:
        return ""
    items = []
    for rank, t in enumerate([translation, *translation.alternatives], start=1):
        numbers = [] if t.score is None else [f"score {t.score:.3f}"]
        numbers += [] if np.isnan(t.log_prob) else [f"log-prob {t.log_prob:.3f}"]
        summary = f"{rank}. {html.escape(t.text)} <span class='s2s-score'>({', '.join(numbers)})</span>"
        detail = heatmap_html(t) or "<p class='s2s-hint'>TF Serving's beam_search signature returns this " + (
            "hypothesis' text and score, not its attention.</p>"
        )
        items.append(f"<details class='s2s-beam'><summary>{summary}</summary>{detail}</details>")
    return "<div class='s2s-beams'><h4>Beam hypotheses</h4>" + "".join(items) + "</div>"


def heads_html(translation: Translation, heads: np.ndarray | None) -> str:
    """A Transformer's cross-attention, one small heatmap per layer and head."""
    if heads is None or np.size(heads) == 0:
        return ""
    grids = []
    for layer in range(heads.shape[0]):
        cells = "".join(
            heatmap_html(
                dataclasses.replace(translation, attention=heads[layer, h]), f"layer {layer + 1}, head {h + 1}"
            )
            for h in range(heads.shape[1])
        )
        grids.append(f"<div class='s2s-heads-row'>{cells}</div>")
    return (
        "<details class='s2s-heads'><summary>Cross-attention per layer and head</summary>"
        + "".join(grids)
        + "</details>"
    )


def message_html(text: str, kind: str = "error") -> str:
    """A one-line message box (``kind``: ``error`` or ``note``)."""
    return f"<div class='s2s-message s2s-{kind}' role='status'>{html.escape(text)}</div>"


def explain(backend, sentence: str, request: Request) -> tuple[str, str, str, str]:
    """What the page shows for ``sentence``: (messages, alignment, heatmap, beams and heads) as HTML.

    Never raises: bad input and faults become a message (the first), the other parts empty.
    """
    stamp = f"<span class='s2s-answer' data-n='{next(_ids)}' hidden></span>"  # tells one answer from the next
    try:
        text = check_sentence(sentence)
        result = backend.translate(text, request)
    except ExplorerError as e:
        return stamp + message_html(str(e)), "", "", ""
    except Exception as e:  # a fault the back end did not foresee: one line, never a traceback on the page
        return stamp + message_html(f"The translation failed: {type(e).__name__}: {first_line(e)}"), "", "", ""
    t = result.translation
    notes = list(result.notes)
    if not has_weights(t):
        notes.append("This model has no attention (trained with --attention none): only the translation is shown.")
    unknown = t.unknown_words_note()
    if unknown:
        notes.append(f"Note: {unknown[0].upper()}{unknown[1:]}.")
    if t.replaced and any(t.replaced):
        notes.append("Output words marked * are source words copied in place of the model's [UNK].")
    if len(t.source_tokens) >= backend.max_source_length:
        notes.append(
            f"Only the first {backend.max_source_length} tokens were read (the model's max_source_length); "
            "the rest of the sentence was cut."
        )
    if backend.fixed_options and (
        request.method == "beam"
        and int(request.beam_width) != DEFAULT_BEAM_WIDTH
        or not request.replace_unk
        or not request.copy_unknown_names
    ):
        notes.append(
            "TF Serving decodes with the options fixed at export (beam width, unknown words): the page's "
            "controls other than the method do not apply."
        )
    messages = stamp + "".join(message_html(n, "note") for n in notes)
    extra = alternatives_html(t) + heads_html(t, result.heads)
    return messages, alignment_html(t), heatmap_html(t), extra


# ---------------------------------------------------------------------- the page
CSS = """
.s2s-alignment { font-size: 1.25rem; line-height: 2.6rem; }
.s2s-line { display: flex; flex-wrap: wrap; align-items: center; gap: 0.4rem; }
.s2s-label { font-size: 0.8rem; color: #6b7280; width: 6rem; }
.s2s-tok { padding: 0.1rem 0.45rem; border-radius: 0.3rem; border: 1px solid #d1d5db; cursor: default; }
.s2s-unknown { text-decoration: underline dotted #b91c1c; }
.s2s-copied { font-style: italic; }
.s2s-hint { font-size: 0.8rem; color: #6b7280; margin: 0.2rem 0; }
.s2s-heatmap { border-collapse: collapse; font-size: 0.85rem; margin: 0.3rem; }
.s2s-heatmap td, .s2s-heatmap th { border: 1px solid #e5e7eb !important; padding: 0.2rem 0.4rem !important; }
.s2s-heatmap td { min-width: 3rem; text-align: center; }
.s2s-heatmap th { font-weight: normal; }
.s2s-heatmap td.s2s-dark { color: white; }
.s2s-heatmap caption { font-size: 0.8rem; color: #6b7280; }
.s2s-heads-row { display: flex; flex-wrap: wrap; }
.s2s-message { padding: 0.4rem 0.7rem; border-radius: 0.3rem; margin: 0.2rem 0; }
.s2s-error { background: #fee2e2; color: #991b1b; }
.s2s-note { background: #fef9c3; color: #713f12; }
.s2s-score { color: #6b7280; font-size: 0.85rem; }
"""


def require_gradio():
    """The ``gradio`` module, or :class:`ExplorerError` saying how to install it."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home from a teaching tool
    try:
        with warnings.catch_warnings():  # Gradio imports tqdm.auto, which warns in a notebook without ipywidgets
            warnings.filterwarnings("ignore", message="IProgress not found")
            import gradio
    except ImportError:
        raise ExplorerError(f"the attention explorer needs Gradio, which is not installed: {INSTALL_HINT}") from None
    return gradio


def build_app(backend, sentence: str = DEFAULT_SENTENCE):
    """The explorer's ``gradio.Blocks`` for a back end (:class:`LocalBackend` or :class:`RestBackend`)."""
    gr = require_gradio()
    cap = (
        f"The model reads at most {backend.max_source_length} tokens of a sentence (its max_source_length) "
        f"and the page takes at most {MAX_CHARACTERS} characters."
    )
    with gr.Blocks(title="seq2seq_keras attention explorer", analytics_enabled=False) as app:
        gr.Markdown(f"## Attention explorer\n{backend.describe()}. {cap}")
        with gr.Row():
            box = gr.Textbox(
                value=sentence, label="Sentence", elem_id="s2s-sentence", lines=1, max_lines=3, scale=4, autofocus=True
            )
            button = gr.Button("Translate", variant="primary", elem_id="s2s-translate", scale=1)
        with gr.Accordion("Decoding", open=False):
            with gr.Row():
                method = gr.Radio(["greedy", "beam"], value="greedy", label="method", elem_id="s2s-method")
                width = gr.Slider(1, 10, value=DEFAULT_BEAM_WIDTH, step=1, label="beam width", elem_id="s2s-width")
                replace = gr.Checkbox(True, label="copy a source word in place of [UNK] (replace_unk)")
                copy = gr.Checkbox(True, label="copy unknown names and numbers (copy_unknown_names)")
            if backend.fixed_options:
                gr.Markdown(
                    "TF Serving: the export fixed beam width and unknown-word options; method picks the signature."
                )
        messages = gr.HTML(elem_id="s2s-messages")
        alignment = gr.HTML(elem_id="s2s-alignment")
        with gr.Row():
            heatmap = gr.HTML(elem_id="s2s-heatmap")
            extra = gr.HTML(elem_id="s2s-extra")

        def run(text, method_value, width_value, replace_value, copy_value):
            request = Request(
                str(method_value or "greedy"), int(width_value or 1), bool(replace_value), bool(copy_value)
            )
            return explain(backend, text, request)

        inputs = [box, method, width, replace, copy]
        outputs = [messages, alignment, heatmap, extra]
        button.click(run, inputs, outputs)
        box.submit(run, inputs, outputs)
        app.load(run, inputs, outputs)  # the page opens translated
    return app


def theme(gr):
    """Gradio's default theme with the system's fonts (the default fetches web fonts from Google)."""
    fonts = ["ui-sans-serif", "system-ui", "NanumGothic", "sans-serif"]
    return gr.themes.Default(font=fonts, font_mono=["ui-monospace", "monospace"])


def launch(
    backend,
    host: str = DEFAULT_HOST,
    port: int | None = DEFAULT_PORT,
    *,
    sentence: str = DEFAULT_SENTENCE,
    inline: bool | None = None,
    block: bool = True,
):
    """Build and serve the page on ``host:port`` (127.0.0.1 unless told otherwise); returns the app.

    ``block``: serve until Ctrl-C (the command line); ``False`` returns at once with the server running in
    the background (a notebook; ``app.close()`` stops it). ``inline``: show it in the notebook's output
    (Gradio's default: inline in Jupyter and Colab).
    """
    gr = require_gradio()
    app = build_app(backend, sentence)
    app.launch(
        server_name=host,
        server_port=port,
        inline=inline,
        inbrowser=False,
        share=False,
        prevent_thread_lock=not block,
        quiet=False,
        theme=theme(gr),
        css=CSS,
        show_error=False,
    )
    return app


def explore(source, host: str = DEFAULT_HOST, port: int | None = None, **kwargs):
    """Open the explorer from a notebook on ``source``: a model in this process, a
    :class:`~seq2seq_keras.serving.client.RestClient` (a running TF Serving) or a
    :class:`~seq2seq_keras.serving.tf_serving_loader.ServingSession` (an export through TF Serving's loader).

    Shown inline in Jupyter and Colab; the server runs in the background (``port`` ``None``: the first free one
    from 7860) until ``app.close()``. Returns the ``gradio.Blocks`` app. Keywords: :func:`launch`'s.
    """
    from .serving.client import RestClient

    if isinstance(source, RestClient):
        backend = RestBackend(source.base_url, source.model_name, client=source)
    elif hasattr(source, "run") and hasattr(source, "signatures"):
        backend = SessionBackend(source)
    else:
        backend = LocalBackend(source, "the model")
    kwargs.setdefault("block", False)
    return launch(backend, host, port, **kwargs)
