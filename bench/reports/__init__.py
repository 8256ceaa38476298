"""Reporting on stored runs, in one direction.

``collect`` (stored runs, scored, ranked and paired with the leader) ->
``format`` (money, numbers, percentages, paired differences) -> ``layout``
(where chart files go) -> writers: ``markdown`` (the page and the README
table), ``files`` (LEADERBOARD.md, leaderboard.json, leaderboard.csv),
``readme`` (the README block) -> ``charts`` (the PNGs) -> ``publish`` (runs
them in order: ``bench leaderboard``). A module here imports only modules before it.
"""
