"""The static site of the stored runs (``bench site``): leaderboard, one page per
predictor, per item and per comparison, browsable offline and from GitHub Pages.

Three steps, one module each: ``source`` reads the stored runs (the one place
that knows the reporting layer's API), ``pages`` turns them into the JSON each
page needs, ``writer`` writes the HTML shells, the data files and the assets.
"""
