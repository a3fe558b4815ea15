"""The Python API: check, run, load, compare and report. The CLI is a thin layer over these functions.

    import bench
    run = bench.run("smoke", device="cpu", budget_s=0.2)       # writes nothing; run.frame is a DataFrame
    run = bench.run([bench.Workload(...)], out="results")      # writes one run folder under results/
    bench.compare("results/baselines/<machine>", run.source)   # verdicts as a DataFrame
    bench.report([run], out="report")                          # report.html, report.md, figures
    bench.history(filter="conv", out="history")                # trends and change points of the history store
    bench.run(bench.layers("torchvision.models:resnet18", (1, 3, 224, 224)))  # every distinct layer and the model

Functions return data and never print; user errors raise bench.BenchError (one line per problem).
"""
from bench.api.ab import AB, ab
from bench.api.comparing import compare, comparison, load
from bench.api.history import History, Imported, history, import_runs, merge, record
from bench.api.reporting import default_report_dir, gather_peaks, peaks, report
from bench.api.models import layers
from bench.api.running import Prepared, check, execute, prepare, run
from bench.measure.runner import devices_for

__all__ = ["AB", "History", "Imported", "Prepared", "ab", "check", "compare", "comparison", "default_report_dir",
           "devices_for", "execute", "gather_peaks", "history", "import_runs", "layers", "load", "merge", "peaks", "prepare",
           "record", "report", "run"]
