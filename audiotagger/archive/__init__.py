"""The archive driver: ``tag``/``embed`` spread over a Ray cluster (``--ray``).

A driver, not a backend (DESIGN "backends × drivers"): the inputs stream through a Ray Data pipeline
(:mod:`.pipeline`) whose actor pool holds one loaded backend per worker (:mod:`.worker`); each file's
outputs are written by the same library functions the plain CLI uses; the driver records every input in
``<out>/_manifest.parquet`` (:mod:`.manifest`). Inputs and outputs may be local paths or fsspec URLs
(:mod:`.storage`, :mod:`.inputs`). Nothing here imports TensorFlow on the driver.
"""
