#!/bin/bash
# usage: run.sh NAME DATA [train.py extra args...]   (env passes through)
name=$1; data=$2; shift 2
cd /work/main
.venv/bin/python train.py --model smollm2-135m-instruct --dtype bf16 --data $data --rank 8 --alpha 32 --targets q_proj,v_proj \
  --epochs 2 --lr 2e-3 --batch-size 8 --grad-accum 2 --eval-every 1000 --seed 0 --out /tmp/tune/$name --overwrite "$@" > /tmp/tune/$name.train.log 2>&1
.venv/bin/python /tmp/tune/valeval.py /tmp/tune/$name $data > /tmp/tune/$name.val.log 2>&1
tail -1 /tmp/tune/$name.train.log; cat /tmp/tune/$name.val.log | grep -v "^\[" | tail -2
