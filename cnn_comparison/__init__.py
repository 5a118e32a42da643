"""Shared, importable code for the pipeline stages in ``stages/``.

Stage scripts stay thin: they parse paths, load params and do I/O; everything
they compute lives here so tests can exercise it on synthetic arrays.
"""
