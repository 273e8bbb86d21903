"""Students pruned from a pretrained teacher: which layers to keep (depth) and how wide each kept layer stays
(width), chosen from the teacher's activations on calibration blocks of the training split.

- ``spec.py``: the settings (``student.method``, ``student.keep``, ``student.width.*``, ``student.params``,
  ``student.calibration_blocks``) and the teacher's shape they are checked against;
- ``calibration.py``: the calibration blocks (training split only) and their digest;
- ``importance.py``: one teacher pass over them: hidden-state similarities, neuron, head and channel magnitudes;
- ``depth.py``: the kept layers (first, spread, a list, block influence, angular distance);
- ``width.py``: the kept MLP neurons, key/value groups and hidden channels of a Llama-architecture model;
- ``cache.py``: importance and pruned students cached by content under a lock;
- ``checks.py``: the settings refused before launch, one line each.
"""
