"""Calibration of apical's burst rules (docs/model.md, sections 11 and 12) against the
authors' code: trains their BurstCCN or Burstprop network (neuralml/BurstCCN, imported
unmodified from SRC, a checkout made by scripts/calibrate-burstccn.sh) on MNIST read from the
local IDX files (their loader would download it; this driver reads the same files apical
reads), on one CPU thread, and prints the training and test error after each epoch. Their
code stays outside apical: this driver only imports it. docs/rules.md, "BurstCCN against the
authors' code" and "Burstprop against the authors' code", has the numbers.

usage: python calibrate_burstccn.py SRC DATA EPOCHS BATCH LR LR_Q Y_SCALE SEED
           [HIDDEN_LAYERS=3] [MODEL=burstccn] [TRAIN_EXAMPLES=60000] [P_BASELINE]

MODEL: "burstccn" (p_b 0.5 unless P_BASELINE; Q = p_b Y, learned at LR_Q when LR_Q > 0),
"burstprop" (their Burstprop without its recurrent hidden weights, apical's section 12;
p_b 0.2 unless P_BASELINE; LR_Q must be 0) or "burstprop-recurrent" (their trainer's default:
recurrent weights of sd 0.01 learned at 0.0001). TRAIN_EXAMPLES: the first that many
examples of each epoch's shuffled order (the test is always all 10,000 images).
"""
import gzip
import os
import sys
import time

import numpy as np

SRC, DATA = sys.argv[1], sys.argv[2]
# Their modules import wandb for logging only; a stub module stands in for it.
sys.path.insert(0, os.path.join(SRC, "apical-stubs"))
sys.path.insert(0, SRC)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from modules.networks_burstccn import BurstCCN  # noqa: E402
from modules.networks_burstprop import BurstProp  # noqa: E402
from modules.optimisers import SGDOptimiser  # noqa: E402

torch.set_num_threads(1)


def idx(name):
    path = os.path.join(DATA, name)
    if os.path.exists(path + ".gz"):
        with gzip.open(path + ".gz") as f:
            raw = f.read()
    else:
        with open(path, "rb") as f:
            raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def main():
    epochs, batch = int(sys.argv[3]), int(sys.argv[4])
    lr, lr_q, y_scale, seed = float(sys.argv[5]), float(sys.argv[6]), float(sys.argv[7]), int(sys.argv[8])
    n_hidden = int(sys.argv[9]) if len(sys.argv) > 9 else 3
    kind = sys.argv[10] if len(sys.argv) > 10 else "burstccn"
    n_train = int(sys.argv[11]) if len(sys.argv) > 11 else 60000
    if kind not in ("burstccn", "burstprop", "burstprop-recurrent"):
        sys.exit(f"MODEL must be burstccn, burstprop or burstprop-recurrent, got {kind!r}")
    if kind != "burstccn" and lr_q != 0:
        sys.exit("LR_Q must be 0 for Burstprop (it has no Q)")
    p_b = float(sys.argv[12]) if len(sys.argv) > 12 else (0.5 if kind == "burstccn" else 0.2)
    q_learning = lr_q > 0
    torch.manual_seed(seed)
    np.random.seed(seed)
    xtr = torch.tensor(idx("train-images-idx3-ubyte").reshape(-1, 784) / 255.0, dtype=torch.float32)
    ytr = torch.tensor(idx("train-labels-idx1-ubyte").astype(np.int64))
    xte = torch.tensor(idx("t10k-images-idx3-ubyte").reshape(-1, 784) / 255.0, dtype=torch.float32)
    yte = torch.tensor(idx("t10k-labels-idx1-ubyte").astype(np.int64))
    if kind == "burstccn":
        model = BurstCCN(n_inputs=784, n_outputs=10, p_baseline=p_b, n_hidden_layers=n_hidden,
                         n_hidden_units=500, Y_mode="random_init", Q_mode="symmetric_init",
                         Y_scale=y_scale, Q_scale=1.0, Y_learning=False, Q_learning=q_learning,
                         device="cpu")
    else:
        recurrent = kind == "burstprop-recurrent"
        model = BurstProp(p_baseline=p_b, n_hidden_layers=n_hidden, n_hidden_units=500,
                          recurrent_input=recurrent, Y_learning=False, Y_mode="random_init",
                          Y_scale=y_scale, recurrent_learning=recurrent, recurrent_scale=0.01,
                          device="cpu")
    opt = SGDOptimiser()
    lrs = [lr] * (n_hidden + 1)
    lrs_y = [0.0] * n_hidden + [None]
    lrs_q = [lr_q] * n_hidden + [None]

    def update():
        if kind == "burstccn":
            model.update_weights(lrs=lrs, lrs_Y=lrs_y, lrs_Q=lrs_q, optimiser=opt)
        else:
            model.update_weights(lr=lrs, recurrent_lr=0.0001, batch_size=batch)

    for epoch in range(1, epochs + 1):
        t0 = time.time()
        perm = torch.randperm(xtr.shape[0])[:n_train]
        wrong = 0
        for s in range(0, perm.shape[0], batch):
            ix = perm[s:s + batch]
            x, y = xtr[ix], ytr[ix]
            out = model(x)
            model.backward(F.one_hot(y, num_classes=10).float())
            update()
            wrong += (out.argmax(1) != y).sum().item()
        t1 = time.time()
        with torch.no_grad():
            pred = model(xte).argmax(1)
        test_err = 100.0 * (pred != yte).float().mean().item()
        n = perm.shape[0]
        print(f"epoch {epoch} train_error {100.0 * wrong / n:.2f} test_error {test_err:.2f} "
              f"seconds {t1 - t0:.1f} ms_per_example {1000 * (t1 - t0) / n:.4f}", flush=True)


if __name__ == "__main__":
    main()
