"""Interpretable cells: text properties, correlation ranking, activations of a char LM, HTML."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorboard_events import Events

import rnnzoo
from rnnzoo.tensorboard import interpretable


def digits(values):
    return "".join(str(int(v))[-1] for v in values)


def test_text_properties_are_the_state_after_each_character():
    text = 'a "b\\"c" /* x "y" */*/ (d[e]) // z(\n  \tf'
    properties = interpretable.text_properties(text)
    assert set(properties) == set(interpretable.PROPERTIES)
    assert all(v.shape == (len(text),) and v.dtype == np.float32 for v in properties.values())
    # An escaped quote does not close the string; the closing quote reads as outside.
    assert digits(properties["inside_quotes"]) == "0011111000000000000000000000000000000000"
    assert digits(properties["inside_comment"]) == "0000000000111111111000000000000111100000"
    assert digits(properties["bracket_depth"]) == "0000000000000000000000011221000000000000"
    assert digits(properties["position_in_line"][:10]) == "1234567890"
    assert properties["position_in_line"][35] == 0  # the newline
    assert list(properties["indentation"][35:]) == [0, 1, 2, 10, 10]  # a tab counts 8


def test_expression_and_block_depth_count_their_own_brackets():
    """Expression depth counts () and [], block depth {}, bracket depth all three; none
    counts a bracket in a string, or goes below 0 at a stray closing one. Only expression
    depth counts a comment's: the "(" in the comment opens one that the last ")" closes."""
    text = 'f(a{b[c]}d) { if (x) { y(); } } /* ( */ "{" )'
    properties = interpretable.text_properties(text)
    assert digits(properties["bracket_depth"]) == "011223321100111112211222322211000000000000000"
    assert digits(properties["expression_depth"]) == "011112211100000001100000100000000001111111110"
    line_comment = interpretable.text_properties("a // [x ( ]\n)(")["expression_depth"]
    assert digits(line_comment) == "00000111221101"  # the newline ends the comment, not the depth
    assert digits(properties["block_depth"]) == "000111110000111111111222222211000000000000000"


def test_a_text_cut_mid_quote_reads_right_from_its_first_paragraph():
    """War and Peace's validation split starts inside a quotation. Read from there, the closing
    quote opens one and the tracker is inverted until the paragraph ends (a blank line now ends
    any quotation); from `paragraph_start` on, it is right."""
    text = 'this means war," said he.\n\n"Well, Prince," she said.\n"So,"\n\n"Then\n \nNo.'
    inside = interpretable.text_properties(text)["inside_quotes"]
    assert digits(inside[:26]) == "0" * 15 + "1" * 11  # inverted: ' said he.\n' reads inside
    assert inside[26] == 0  # the blank line ends it
    start = interpretable.paragraph_start(text)
    assert text[start:].startswith('"Well')
    window = text[start:]
    # '"Well, Prince,' in, '" she said.\n' out, '"So,' in, '"\n\n' out, '"Then\n ' in (a line of
    # one space is blank), then '\nNo.' out.
    expected = "1" * 14 + "0" * 12 + "1" * 4 + "0" * 3 + "1" * 7 + "0" * 4
    assert digits(interpretable.text_properties(window)["inside_quotes"]) == expected
    assert interpretable.paragraph_start("one line\nanother\n") == 0  # no blank line
    assert interpretable.paragraph_start("a\n \t\n\n  code();\n") == 6  # indentation kept


def test_line_ramp_finds_a_cell_that_ramps_along_each_line_at_a_different_level(rng):
    """A line-length cell as the paper draws it: it climbs along every line and resets at the
    newline. When its level also moves from line to line (in dialogue, say), its correlation
    with the column over the whole text is weak; within lines it is near 1."""
    lines = ["x" * int(n) for n in rng.integers(40, 75, size=60)]
    text = "\n".join(lines) + "\n"
    properties = interpretable.text_properties(text)
    groups = interpretable.property_groups(text)
    column = properties["position_in_line"]
    assert np.array_equal(properties["line_ramp"], column)
    level = rng.uniform(-0.6, 0.6, size=len(lines) + 1)[groups["line_ramp"]]
    cells = rng.normal(0, 0.01, (len(text), 3))
    cells[:, 0] += level - 0.004 * column  # ramps down each line from a level of its own
    cells[:, 2] += column / 100  # a plain ramp: both measures find it
    ranking = interpretable.rank_cells(cells, properties, groups)
    by_unit = {score.unit: score.correlation for score in ranking["position_in_line"]}
    assert abs(by_unit[0]) < 0.5 and by_unit[2] > 0.99  # the window-wide measure misses cell 0
    within = {score.unit: score.correlation for score in ranking["line_ramp"]}
    assert within[0] < -0.95 and within[2] > 0.99 and abs(within[1]) < 0.1
    # the pooled within-line correlation, by hand for cell 0
    residual = {}
    for name, values in (("cell", cells[:, 0]), ("column", column.astype(float))):
        means = {g: values[groups["line_ramp"] == g].mean() for g in set(groups["line_ramp"])}
        residual[name] = values - np.array([means[g] for g in groups["line_ramp"]])
    assert within[0] == pytest.approx(np.corrcoef(residual["cell"], residual["column"])[0, 1])


def test_correlations_match_numpy_and_constant_cells_score_zero(rng):
    activations = rng.normal(size=(50, 4))
    activations[:, 2] = 0.3
    values = rng.normal(size=50)
    r = interpretable.correlations(activations, values)
    for unit in (0, 1, 3):
        assert r[unit] == pytest.approx(np.corrcoef(activations[:, unit], values)[0, 1])
    assert r[2] == 0.0


def test_rank_cells_finds_planted_cells(rng):
    text = 'He said "yes" and left.\nShe said "no, never" and stayed here.\n' * 4
    properties = interpretable.text_properties(text)
    first = rng.uniform(-0.3, 0.3, (len(text), 10))
    second = rng.uniform(-0.3, 0.3, (len(text), 6))
    first[:, 7] += properties["inside_quotes"]  # a quote cell
    second[:, 2] -= properties["position_in_line"] / 40  # a line-length cell, negative
    ranking = interpretable.rank_cells({"rnn_1": first, "rnn_2": second}, properties)
    best_quote = ranking["inside_quotes"][0]
    assert (best_quote.layer, best_quote.unit) == ("rnn_1", 7) and best_quote.correlation > 0.8
    best_line = ranking["position_in_line"][0]
    assert (best_line.layer, best_line.unit) == ("rnn_2", 2) and best_line.correlation < -0.8
    assert len(ranking["bracket_depth"]) == 16
    with pytest.raises(ValueError, match="each of the"):
        interpretable.rank_cells({"rnn_1": first[:-1]}, properties)


def test_cell_activations_are_tanh_c_of_each_layer(rng):
    vocabulary = sorted(set('ab"(){} \n'))
    text = 'a "b" (a{b})\n  "ab" ' * 2
    model = rnnzoo.models.build_char_lm(
        len(vocabulary), units=5, num_layers=2, embedding_dim=4, seed=1
    )
    activations = interpretable.cell_activations(model, vocabulary, text)
    assert {name: a.shape for name, a in activations.items()} == {
        "rnn_1": (len(text), 5),
        "rnn_2": (len(text), 5),
    }
    # Keras's own loop, from the same weights, with the last cell state returned.
    ids = interpretable.encode(text, vocabulary)[None]
    embedded = model.get_layer("embedding")(ids)
    twin = rnnzoo.layers.LSTM(5, return_state=True)
    twin(embedded)
    twin.set_weights(model.get_layer("rnn_1").get_weights())
    _, _, c = twin(embedded)
    np.testing.assert_allclose(
        activations["rnn_1"][-1], np.tanh(keras.ops.convert_to_numpy(c)[0]), atol=1e-5
    )
    assert np.all(np.abs(activations["rnn_2"]) < 1)
    with pytest.raises(ValueError, match="vocabulary lacks"):
        interpretable.cell_activations(model, vocabulary, "xyz")


def test_cell_activations_of_a_one_hot_gru_model_are_h(rng):
    vocabulary = "abc"
    model = keras.Sequential(
        [keras.Input((None, 3)), rnnzoo.layers.GRU(4, return_sequences=True, name="gru")]
    )
    text = "abcabcaab"
    activations = interpretable.cell_activations(model, vocabulary, text)
    one_hot = np.eye(3, dtype="float32")[interpretable.encode(text, vocabulary)][None]
    np.testing.assert_allclose(
        activations["gru"], keras.ops.convert_to_numpy(model(one_hot))[0], atol=1e-6
    )


def test_inspect_writes_the_page_and_tensorboard_images(tmp_path, rng):
    vocabulary = sorted(set('ab"<>& \n'))
    text = 'a "<b>" & b\n' * 5
    model = rnnzoo.models.build_char_lm(
        len(vocabulary), units=4, num_layers=1, embedding_dim=3, seed=2
    )
    page = tmp_path / "cells.html"
    ranking = interpretable.inspect(
        model, vocabulary, text, page, log_dir=tmp_path / "tb", step=7, k=2, image_dir=tmp_path
    )
    # No brackets, indentation or comments in this text: nothing to rank those by.
    varying = {"inside_quotes", "position_in_line", "line_ramp"}
    assert set(ranking) == varying
    for name in interpretable.PROPERTIES:  # the top cell of each as a PNG, 80 characters wide
        if name not in varying:
            assert not (tmp_path / f"cells_{name}.png").exists()
            continue
        picture = tf.io.decode_png(tf.io.read_file(str(tmp_path / f"cells_{name}.png")))
        assert picture.shape[1] == 80 * 8 and picture.shape[2] == 3
    html = page.read_text(encoding="utf-8")
    assert html.count("<span style=") == len(text) * 2 * len(varying)
    assert ">&lt;</span>" in html and "<b>" not in html  # the text is escaped
    top = ranking["inside_quotes"][0]
    assert f"{top.label}: r = {top.correlation:+.3f}" in html
    events = Events(tmp_path / "tb")
    assert events.tags("images") == {f"interpretable/{name}/0" for name in varying}
    ((step, image),) = events.images("interpretable/inside_quotes/0")
    assert step == 7 and image.shape[1] == 80 * 8
