"""Find interpretable cells of a character language model (Karpathy, Johnson & Fei-Fei 2015).

Run the model over a text one character at a time, keep each cell's
activation after every character (tanh(c_t) for cells with a memory c, as in
the paper's figures; h_t otherwise), and correlate every cell with simple
properties of the text at that character. A cell whose activation follows
"inside quotes" is a quote cell; one that follows the position in the line
is a line-length cell. The results go to an HTML page of text coloured by
each top cell, and to TensorBoard as images.

    text = open("input.txt").read()[:5000]
    activations = cell_activations(model, vocabulary, text)
    ranking = rank_cells(activations, text_properties(text))
    write_html("cells.html", text, activations, ranking)

Every property is the state *after* reading character t, the same moment as
the cell's activation at t. A window cut from the middle of a text (a
validation split) may start inside a quotation: start it at
`paragraph_start(text)`, after the first blank line, where none is open.

Most properties are correlated over the whole window. `line_ramp` is
correlated within lines (`property_groups`): a cell that rises along each line
and drops at the newline, but sits higher in some lines than in others (in
dialogue, say), has a weak correlation with the column over the window, the
line-to-line differences swamping the ramp, and a strong one within lines.
"""

import dataclasses
import html
import pathlib
import re

import keras
import numpy as np
import tensorflow as tf

from rnnzoo.tensorboard import images
from rnnzoo.tensorboard.probe import probe

PROPERTIES = {
    "inside_quotes": 'Inside a "double-quoted" string (the opening quote counts as inside); a '
    "blank line ends it, since prose leaves a quotation open across paragraphs.",
    "position_in_line": "Characters since the last newline (0 at the newline).",
    "line_ramp": "Characters since the last newline, correlated within each line: each line's "
    "mean is taken out of the position and of the cell, so a cell that ramps along every line "
    "and resets at the newline scores high whatever its level from line to line.",
    "bracket_depth": "Nesting depth of (), [] and {} outside strings and comments.",
    "expression_depth": "Nesting depth of () and [] alone, outside strings: the depth of an "
    "expression (Karpathy's 2015 blog post on char-rnn shows a cell that follows it). Unlike "
    "the other depths it counts them in comments too: the Linux kernel models' expression "
    "cells follow those as well (r -0.83 against -0.76 without, README).",
    "block_depth": "Nesting depth of {} alone, outside strings and comments: the depth of a "
    "block (a function's body is 1, an `if` in it 2).",
    "indentation": "Leading whitespace of the current line read so far (a tab counts 8).",
    "inside_comment": "Inside a C comment, /* ... */ or // to the end of the line.",
}


def text_properties(text):
    """Per-character properties of `text`: name -> float32 array of len(text). See `PROPERTIES`.

    Each value is the state after reading the character: an opening quote is
    inside, a closing one outside; the "*" of "/*" is inside a comment and
    the "/" of "*/" outside.
    """
    values = {name: np.zeros(len(text), dtype=np.float32) for name in PROPERTIES}
    in_quote = escaped = in_block = in_line = False
    in_indent = blank_line = True
    column = depth = indent = block_start = 0
    depths = {"(": 0, "{": 0}  # expression and block depth: "[" counts with "("
    kind = {"(": "(", "[": "(", "{": "{", ")": "(", "]": "(", "}": "{"}  # each bracket's counter
    previous = ""
    for t, char in enumerate(text):
        if in_quote:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_quote = False
        elif in_block or in_line:
            # t > block_start + 1: the "*" that opened the comment cannot close it ("/*/").
            if in_block and previous == "*" and char == "/" and t > block_start + 1:
                in_block = False
                char = ""  # this "/" starts nothing: "*/*" is not a new comment
            in_line = in_line and char != "\n"
            if char and char in "([":  # a comment's nest as code's do (see PROPERTIES)
                depths["("] += 1
            elif char and char in ")]":
                depths["("] = max(0, depths["("] - 1)
        elif char == '"':
            in_quote = True
        elif previous == "/" and char == "*":
            in_block, block_start = True, t
        elif previous == "/" and char == "/":
            in_line = True
        elif char in "([{":
            depth += 1
            depths[kind[char]] += 1
        elif char in ")]}":
            depth = max(0, depth - 1)
            depths[kind[char]] = max(0, depths[kind[char]] - 1)
        if char == "\n":
            if blank_line:  # a paragraph break: no quotation stays open across it
                in_quote = escaped = False
            column, indent, in_indent, blank_line = 0, 0, True, True
        elif not char:
            column += 1
            in_indent = blank_line = False
        else:
            column += 1
            blank_line = blank_line and char in " \t"
            if in_indent and char in " \t":
                indent += 8 if char == "\t" else 1
            else:
                in_indent = False
        values["inside_quotes"][t] = in_quote
        values["position_in_line"][t] = column
        values["line_ramp"][t] = column
        values["bracket_depth"][t] = depth
        values["expression_depth"][t] = depths["("]
        values["block_depth"][t] = depths["{"]
        values["indentation"][t] = indent
        values["inside_comment"][t] = in_block or in_line
        previous = char
    return values


def property_groups(text):
    """The properties correlated within groups of characters, and each character's group:
    `{"line_ramp": line number}`, a newline opening the line it starts (its position is 0)."""
    return {"line_ramp": np.cumsum(np.frombuffer(text.encode("utf-32-le"), "<u4") == 10)}


def paragraph_start(text):
    """Where the first paragraph of `text` starts: at the first line after its first blank
    line(s) (lines of nothing but spaces and tabs), or 0 when it has none."""
    match = re.search(r"\n(?:[ \t]*\n)+", text)
    return match.end() if match and match.end() < len(text) else 0


@dataclasses.dataclass(frozen=True)
class CellScore:
    """How well one cell follows one property: Pearson correlation over the text."""

    layer: str
    unit: int
    property: str
    correlation: float

    @property
    def label(self):
        return f"{self.layer} cell {self.unit}"


def within_groups(values, groups):
    """`values` (time, ...) less the mean of its group at each time step; `groups` (time,) holds
    group numbers that change only between consecutive runs (lines of a text)."""
    values, groups = np.asarray(values, dtype=np.float64), np.asarray(groups)
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    lengths = np.diff(np.append(starts, len(values)))
    means = np.add.reduceat(values, starts, axis=0) / lengths.reshape(-1, *[1] * (values.ndim - 1))
    return values - np.repeat(means, lengths, axis=0)


def correlations(activations, values, groups=None):
    """Pearson correlation of each column of `activations` (time, units) with `values` (time,).

    With `groups` (time,), both are first taken relative to their group's mean (see
    `within_groups`): the pooled within-group correlation. A constant column or constant
    `values` correlates 0.
    """
    activations = np.asarray(activations, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    if groups is not None:
        activations = within_groups(activations, groups)
        values = within_groups(values, groups)
    a = activations - activations.mean(axis=0)
    v = values - values.mean()
    denominator = np.sqrt((a * a).sum(axis=0) * (v * v).sum())
    # A spread below float64 rounding of the group means counts as constant.
    varies = (np.ptp(activations, axis=0) > 1e-12) & (np.ptp(values) > 1e-12)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (a * v[:, None]).sum(axis=0) / denominator
    return np.where(varies, r, 0.0)


def rank_cells(activations, properties, groups=None):
    """Rank every cell by |correlation| with each property.

    Args:
        activations: Layer name -> (time, units) array (as `cell_activations`
            returns), or one (time, units) array.
        properties: Property name -> (time,) array (as `text_properties`).
        groups: Property name -> (time,) group numbers for the properties to
            correlate within groups (as `property_groups`); others over all.

    Returns:
        Property name -> list of `CellScore`, all cells, strongest |r| first.
    """
    if not isinstance(activations, dict):
        activations = {"cells": activations}
    ranking = {}
    for name, values in properties.items():
        scores = []
        for layer, matrix in activations.items():
            if len(matrix) != len(values):
                raise ValueError(
                    f"Expected activations of layer {layer!r} for each of the "
                    f"{len(values)} characters, received {len(matrix)} time steps."
                )
            r = correlations(matrix, values, (groups or {}).get(name))
            scores.extend(CellScore(layer, unit, name, float(r[unit])) for unit in range(len(r)))
        ranking[name] = sorted(scores, key=lambda score: -abs(score.correlation))
    return ranking


def encode(text, vocabulary):
    """Character ids of `text`.

    `vocabulary`: an object with `encode(text)` (as `rnnzoo.data.text.Vocabulary`),
    a dict char -> id, or a sequence of characters (id = index).
    """
    if not isinstance(vocabulary, str) and callable(getattr(vocabulary, "encode", None)):
        return np.asarray(vocabulary.encode(text), dtype=np.int32)
    table = (
        vocabulary
        if isinstance(vocabulary, dict)
        else {char: i for i, char in enumerate(vocabulary)}
    )
    unknown = sorted({char for char in text if char not in table})
    if unknown:
        raise ValueError(
            f"The text has characters the vocabulary lacks: {unknown[:20]!r}. "
            "Use text from the model's corpus, or drop those characters."
        )
    return np.array([table[char] for char in text], dtype=np.int32)


def cell_activations(model, vocabulary, text):
    """Each recurrent layer's cell activations after every character of `text`.

    The model takes character ids (batch, time), or one-hot vectors when its
    input is (batch, time, len(vocabulary)). A fixed batch size in the model's
    input is filled with copies of the text.

    Returns:
        Layer name -> (len(text), units) array: tanh(c_t) for layers whose
        cell has a state named "c", h_t otherwise.
    """
    ids = encode(text, vocabulary)
    input_shape = tuple(model.inputs[0].shape) if getattr(model, "inputs", None) else (None, None)
    inputs = ids[None]
    if len(input_shape) == 3:
        inputs = keras.ops.convert_to_numpy(keras.ops.one_hot(inputs, input_shape[-1]))
    if input_shape[0] is not None:
        inputs = np.repeat(inputs, input_shape[0], axis=0)
    traces, _ = probe(model, inputs)
    return {
        trace.name: (
            np.tanh(trace.states["c"][0])
            if "c" in trace.states
            else trace.states[next(iter(trace.states))][0]
        )
        for trace in traces
    }


def top_cells(ranking, k=3):
    """The `k` strongest cells of each property, as one list."""
    return [score for scores in ranking.values() for score in scores[:k]]


def _span(char, value):
    red, green, blue = images.colorize(np.array([value]), -1.0, 1.0, "diverging")[0]
    ink = "#fff" if images.luminance((red, green, blue)) < 110 else "#000"
    shown = "↵\n" if char == "\n" else html.escape(char)
    return f'<span style="background:rgb({red},{green},{blue});color:{ink}">{shown}</span>'


def write_html(path, text, activations, ranking, k=3, max_chars=3000):
    """Write an HTML page: the text coloured by each property's `k` top cells, and a ranking table.

    Colours as in the TensorBoard images: blue for tanh(c) = -1, white for 0,
    red for +1.
    """
    shown = text[:max_chars]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>"
        "<title>rnnzoo: interpretable cells</title>",
        "<style>body{font-family:sans-serif;max-width:70em;margin:auto}"
        "pre{font-family:monospace;line-height:1.3;white-space:pre-wrap}"
        "td,th{padding:0 .6em;text-align:left}</style></head><body>",
        "<h1>Interpretable cells</h1>",
        f"<p>{len(text)} characters; each cell's activation (tanh(c) for LSTM cells) "
        "correlated with properties of the text. Background: blue = -1, white = 0, red = +1.</p>",
        "<h2>Ranking</h2><table><tr><th>property</th><th>cell</th><th>correlation</th></tr>",
    ]
    for name, scores in ranking.items():
        for score in scores[:k]:
            parts.append(
                f"<tr><td>{html.escape(name)}</td><td>{html.escape(score.label)}</td>"
                f"<td>{score.correlation:+.3f}</td></tr>"
            )
    parts.append("</table>")
    for name, scores in ranking.items():
        parts.append(f"<h2>{html.escape(name)}</h2><p>{html.escape(PROPERTIES.get(name, ''))}</p>")
        for score in scores[:k]:
            values = activations[score.layer][: len(shown), score.unit]
            body = "".join(_span(char, value) for char, value in zip(shown, values))
            parts.append(
                f"<h3>{html.escape(score.label)}: r = {score.correlation:+.3f}</h3>"
                f"<pre>{body}</pre>"
            )
    parts.append("</body></html>")
    with open(path, "w", encoding="utf-8") as file:
        file.write("\n".join(parts))
    return path


def top_cell_pictures(text, activations, ranking, k=1, max_chars=800):
    """`{(property, rank): picture}`: the text coloured by each property's `k` strongest cells,
    80 characters a row, titled with the cell and its correlation."""
    shown = text[:max_chars]
    return {
        (name, rank): images.titled(
            images.text_image(
                shown, activations[score.layer][: len(shown), score.unit], columns=80
            ),
            f"{score.label} r={score.correlation:+.2f}",
        )
        for name, scores in ranking.items()
        for rank, score in enumerate(scores[:k])
    }


def write_top_cell_images(text, activations, ranking, step=0, k=1, max_chars=800):
    """Images `interpretable/<property>/<rank>` of the text coloured by the top cells.

    Writes into the default `tf.summary` writer.
    """
    pictures = top_cell_pictures(text, activations, ranking, k, max_chars)
    for (name, rank), picture in pictures.items():
        score = ranking[name][rank]
        tf.summary.image(
            f"interpretable/{name}/{rank}",
            images.summary_image(picture),
            step=step,
            description=(
                f"The text coloured by {score.label}, the cell with the {rank + 1}. strongest "
                f"correlation with {name} ({PROPERTIES.get(name, name)}). "
                "Blue -1, white 0, red +1."
            ),
        )


def inspect(
    model, vocabulary, text, html_path, log_dir=None, step=0, k=3, max_chars=20000, image_dir=None
):
    """Everything `charlm inspect` does: activations, ranking, HTML page and TensorBoard images.

    Args:
        model: The trained char-LM `keras.Model`.
        vocabulary: Its vocabulary (see `encode`).
        text: Text to run the model over; only the first `max_chars` are used. A
            text cut from inside a longer one (a split) should start at a
            paragraph (`paragraph_start`): the property tracker starts outside
            any quotation.
        html_path: Where to write the HTML page.
        log_dir: If given, the top cell of each property goes there as images.
        step: The TensorBoard step of those images (e.g. the training step).
        k: Top cells per property on the page.
        image_dir: If given, the top cell of each property goes there as
            `cells_<property>.png` too (the pictures of the README).

    Returns:
        The ranking (see `rank_cells`) of the properties that vary over the
        text; one the text leaves the same at every character (no quotation
        in C code, no comment in prose) has nothing to correlate with, and
        is left out of the ranking, the page and the images.
    """
    text = text[:max_chars]
    activations = cell_activations(model, vocabulary, text)
    properties = {name: v for name, v in text_properties(text).items() if np.ptp(v) > 0}
    ranking = rank_cells(activations, properties, property_groups(text))
    write_html(html_path, text, activations, ranking, k=k)
    if log_dir is not None:
        writer = tf.summary.create_file_writer(str(log_dir))
        with writer.as_default():
            write_top_cell_images(text, activations, ranking, step=step)
        writer.close()
    if image_dir is not None:
        for name in PROPERTIES.keys() - ranking.keys():  # an earlier text's picture
            pathlib.Path(image_dir, f"cells_{name}.png").unlink(missing_ok=True)
        for (name, _), picture in top_cell_pictures(text, activations, ranking).items():
            images.write_png(f"{image_dir}/cells_{name}.png", picture)
    return ranking
