"""How often a 2-process CPU (gloo) torchrun of train.py fails at exit: the figures in README "torchrun".

Copy into tests/ and run `REPRO_N=60 .venv/bin/python -m pytest -q -s tests/repro_test.py`
(about 6.5 s a run on the 2-core machine). Before commit 6593b9d it stopped at the first failure.
"""
import os
import subprocess
import sys

from test_distributed import ROOT, train_data, training_flags  # noqa: F401 (train_data is a fixture)
from test_evaluate import tiny  # noqa: F401 (a fixture)


def test_repro(tiny, train_data, tmp_path):
    flags = [*training_flags(tiny, train_data), "--dropout", "0.1"]
    fails = 0
    for i in range(int(os.environ.get("REPRO_N", "15"))):
        run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                              "train.py", *flags, "--out", str(tmp_path / f"r{i}")], cwd=ROOT,
                             env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True)
        if run.returncode:
            fails += 1
            print("FAIL", i, run.stderr[-2500:])
    print("fails", fails)
    assert fails == 0
