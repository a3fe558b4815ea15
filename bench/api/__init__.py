"""The Python API: check, run, load, compare, report and attribution. The CLI is a thin layer over these functions.

    import bench
    run = bench.run("smoke", device="cpu", budget_s=0.2)       # writes nothing; run.frame is a DataFrame
    run = bench.run([bench.Workload(...)], out="results")      # writes one run folder under results/
    bench.compare("results/baselines/<machine>", run.source)   # verdicts as a DataFrame
    bench.make_report([run], out="report")                     # report.html, report.md, figures
    bench.attribution(run)                                     # a model's time per layer, as a DataFrame
    bench.history(filter="conv", out="history")                # trends and change points of the history store
    bench.run(bench.layers("torchvision.models:resnet18", (1, 3, 224, 224)))  # every distinct layer and the model

Functions return data and never print; user errors raise bench.BenchError (one line per problem).
"""
from bench.api.ab import AB, ab
from bench.api.calibrating import Calibrated, calibrate
from bench.api.comparing import compare, comparison, load
from bench.api.history import History, Imported, add_to_history, history, import_runs, merge
from bench.api.models import layers
from bench.api.reporting import attribution, default_report_dir, gather_peaks, make_report, peaks
from bench.api.running import Prepared, check, execute, prepare, run
from bench.api.site import Site, history_site
from bench.measure.runner import devices_for

__all__ = ["AB", "Calibrated", "History", "Imported", "Prepared", "Site", "ab", "add_to_history", "attribution",
           "calibrate", "check", "compare", "comparison", "default_report_dir", "devices_for", "execute",
           "gather_peaks", "history", "history_site", "import_runs", "layers", "load", "make_report", "merge", "peaks",
           "prepare", "run"]
