#!/bin/bash
# Two `lenet5 train --resume` on one run directory at once (issue: one writer per run).
# usage: scripts/two_writers.sh SRC_DIR   (SRC_DIR: the src folder of the checkout to try)
set -u
SRC=$1; W=$(mktemp -d)
PY=${PYTHON:-.venv/bin/python}
cd "$(dirname "$0")/.." && $PY -c "
import sys; sys.path.insert(0, 'tests')
from conftest import write_dataset
from lenet5.data import mnist as data
write_dataset(__import__('pathlib').Path('$W/data'), n_train=data.VALIDATION_SIZE + 4000, n_test=500)"
export PYTHONPATH=$SRC OMP_NUM_THREADS=1
$PY -m lenet5 train --data-dir $W/data --run-dir $W/run --epochs 1 --no-progress > /dev/null
$PY -m lenet5 train --resume $W/run --epochs 4 --data-dir $W/data --no-progress > $W/a.log 2>&1 &
$PY -m lenet5 train --resume $W/run --epochs 4 --data-dir $W/data --no-progress > $W/b.log 2>&1 &
wait
echo "process A: $(grep -c '^epoch' $W/a.log) epoch lines; last: $(tail -1 $W/a.log)"
echo "process B: $(grep -c '^epoch' $W/b.log) epoch lines; last: $(tail -1 $W/b.log)"
echo "metrics.jsonl epochs: $($PY -c "import json; print([json.loads(l)['epoch'] for l in open('$W/run/metrics.jsonl')])")"
