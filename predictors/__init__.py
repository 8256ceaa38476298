"""Built-in predictors, one module (or small package) per family.

Each module registers itself with ``bench.registry.register`` and imports its
heavy libraries (torch, sklearn, SDKs) lazily, inside methods.
"""
