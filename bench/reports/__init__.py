"""Reporting on stored runs, in one direction.

``collect`` (stored runs, scored, ranked and paired with the leader) ->
``format`` (money, numbers, percentages, paired differences) -> ``layout``
(where chart files go) -> writers: ``markdown`` (the page and the README
table), ``files`` (LEADERBOARD.md, leaderboard.json, leaderboard.csv),
``readme`` (the README block) -> ``charts`` (the PNGs). ``bench.leaderboard``
runs them in order (``publish``). A module here imports only modules before it.
"""
