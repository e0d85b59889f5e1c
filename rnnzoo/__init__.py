"""rnnzoo: recurrent networks for Keras 3 — cells, layers, recipes and TensorBoard views.

>>> import keras, rnnzoo
>>> layer = keras.layers.RNN(rnnzoo.cells.get("lstm")(16))
"""

from rnnzoo import cells, layers, models

__version__ = "0.1.0"

__all__ = ["cells", "layers", "models", "__version__"]
