"""Worker processes: every row is measured in processes the runner starts, never in the caller's.

protocol: what crosses the socket (the worker imports it, and main, from this package); process: the handle on
one worker process and the diagnosis of its crashes; rows: which rows a side has and which apply; cost: what the
workers cost and the time a run has left; schedule: the order rows and processes are measured in (`run`'s
trials, `ab`'s pairs); counter: the callgrind workers of --metric instructions; main: the worker program.

Nothing is imported here: the worker process imports only what it needs.
"""
