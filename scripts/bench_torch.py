"""PyTorch peer of `apical bench --rules`: the rate network of docs/model.md, sections 9-10
(784-500-10, r_in = lambda_max x, hidden r = lambda_max sigma(k_B (W r + b)), output
C = k_D (W r + b), cross-entropy of sigma(C)) trained one example at a time by backprop
(autograd) and by feedback alignment (the hidden error through a fixed random B), on one CPU
thread: what a user would otherwise write. One example at a time, then minibatches of 32
(the mean of the batch's updates, as `[training] batch_size = 32`; rules named `-b32`).
Prints ms per training example, median of reps.

Usage: python bench_torch.py MNIST_DIR [EXAMPLES=1000] [REPS=5]
"""
import gzip
import os
import statistics
import sys
import time

import numpy as np
import torch

LAMBDA, G_L, G_B, G_D = 0.2, 0.1, 0.6, 0.6
K_B, K_D = G_B / (G_L + G_B), G_D / (G_L + G_D)
ETA = 1.0


def idx_images(path):
    op = gzip.open if path.endswith(".gz") else open
    with op(path, "rb") as f:
        data = f.read()
    n, rows, cols = (int.from_bytes(data[i : i + 4], "big") for i in (4, 8, 12))
    return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(n, rows * cols)


def idx_labels(path):
    op = gzip.open if path.endswith(".gz") else open
    with op(path, "rb") as f:
        data = f.read()
    return np.frombuffer(data, dtype=np.uint8, offset=8)


def find(d, stem):
    for name in (stem, stem + ".gz"):
        p = os.path.join(d, name)
        if os.path.exists(p):
            return p
    raise SystemExit(f"bench_torch: no {stem}[.gz] in {d}")


def init(gen, n_in, n):
    w = (torch.rand(n, n_in, generator=gen) * 2 - 1) * 0.1
    b = torch.rand(n, generator=gen) * 2 - 1
    return w, b


def train(rule, x, y, examples, batch=1):
    gen = torch.Generator().manual_seed(0)
    w0, b0 = init(gen, 784, 500)
    w1, b1 = init(gen, 500, 10)
    bmat = (torch.rand(500, 10, generator=gen) * 2 - 1) * 0.1
    params = [w0, b0, w1, b1]
    if rule == "backprop":
        for p in params:
            p.requires_grad_(True)
    t0 = time.perf_counter()
    if batch > 1:
        # Rows are examples; the mean over the batch of the per-example updates.
        for k in range(0, examples, batch):
            r_in = x[k : k + batch]
            target = y[k : k + batch]
            n = r_in.shape[0]
            if rule == "backprop":
                c_h = K_B * (r_in @ w0.T + b0)
                r_h = LAMBDA * torch.sigmoid(c_h)
                c_o = K_D * (r_h @ w1.T + b1)
                loss = torch.nn.functional.binary_cross_entropy_with_logits(
                    c_o, target, reduction="sum"
                ) / n
                loss.backward()
                with torch.no_grad():
                    for p in params:
                        p -= ETA * p.grad
                        p.grad = None
            else:
                with torch.no_grad():
                    c_h = K_B * (r_in @ w0.T + b0)
                    s_h = torch.sigmoid(c_h)
                    r_h = LAMBDA * s_h
                    c_o = K_D * (r_h @ w1.T + b1)
                    e_o = K_D * (torch.sigmoid(c_o) - target)
                    e_h = (e_o @ bmat.T) * (K_B * LAMBDA) * s_h * (1 - s_h)
                    w1 -= (ETA / n) * (e_o.T @ r_h)
                    b1 -= (ETA / n) * e_o.sum(0)
                    w0 -= (ETA / n) * (e_h.T @ r_in)
                    b0 -= (ETA / n) * e_h.sum(0)
        return 1000.0 * (time.perf_counter() - t0) / examples
    for k in range(examples):
        r_in = x[k]
        target = y[k]
        if rule == "backprop":
            c_h = K_B * (w0 @ r_in + b0)
            r_h = LAMBDA * torch.sigmoid(c_h)
            c_o = K_D * (w1 @ r_h + b1)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                c_o, target, reduction="sum"
            )
            loss.backward()
            with torch.no_grad():
                for p in params:
                    p -= ETA * p.grad
                    p.grad = None
        else:
            with torch.no_grad():
                c_h = K_B * (w0 @ r_in + b0)
                s_h = torch.sigmoid(c_h)
                r_h = LAMBDA * s_h
                c_o = K_D * (w1 @ r_h + b1)
                e_o = K_D * (torch.sigmoid(c_o) - target)
                e_h = (bmat @ e_o) * (K_B * LAMBDA) * s_h * (1 - s_h)
                w1 -= ETA * torch.outer(e_o, r_h)
                b1 -= ETA * e_o
                w0 -= ETA * torch.outer(e_h, r_in)
                b0 -= ETA * e_h
    return 1000.0 * (time.perf_counter() - t0) / examples


def main():
    d = sys.argv[1]
    examples = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    reps = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    torch.set_num_threads(1)
    images = idx_images(find(d, "train-images-idx3-ubyte"))[:examples]
    labels = idx_labels(find(d, "train-labels-idx1-ubyte"))[:examples]
    x = torch.tensor(images, dtype=torch.float32) * (LAMBDA / 255.0)
    y = torch.nn.functional.one_hot(torch.tensor(labels, dtype=torch.int64), 10).float()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread, {examples} examples x {reps}")
    for batch in (1, 32):
        for rule in ("backprop", "feedback-alignment"):
            ms = [train(rule, x, y, examples, batch) for _ in range(reps)]
            name = rule if batch == 1 else f"{rule}-b{batch}"
            print(f"torch\t{name}\t{statistics.median(ms):.4f}\tms/example\t(runs: {', '.join(f'{m:.4f}' for m in ms)})")


if __name__ == "__main__":
    main()
