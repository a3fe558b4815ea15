"""Worker processes: every row is measured in processes the runner starts, never in the caller's.

protocol: what crosses the socket (the only module the worker's own imports need from here besides main);
process: the handle on one worker process and the diagnosis of its crashes; cost: what the workers cost and the
time left; schedule: the order rows and processes are measured in (`run`'s trials, `ab`'s pairs); counter: the
callgrind workers of --metric instructions; main: the worker program itself.

Nothing is imported here: the worker process imports only what it needs.
"""
