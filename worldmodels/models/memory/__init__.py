"""M, the memory model: the MDN-RNN (mdnrnn.py, Keras), its done-head calibration (calibration.py,
numpy) and its plots (plots.py). Importing this package imports no TensorFlow."""
