"""Leaderboard submissions: a run directory packed as a zip with checksums, validated before it is stored.

`submission` writes the zip, `archive` opens one safely, `validate` checks the run inside it against the
task's official prompt set, `trust` recomputes its verdict and says how far its scores were checked,
`verify` re-scores some or all images, `db` keeps the board in SQLite and `show` renders it. Only `cli`
is imported by `ts-eval --help`, and it imports the rest when a command runs. docs/leaderboard.md
explains the trust model.
"""
