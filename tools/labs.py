"""What the generators that run the seed labs in PyTorch share (gen_ref_lab.py,
gen_ref_linreg_sgd.py, gen_ref_sgd_normal.py, gen_ref_gd_pipeline.py): the labs' own
pieces, written as the labs write them, and the C programs' command lines read back
into the labs' knobs. Needs Debian's python3-torch (PyTorch 1.13).
"""
import torch
from torch.utils.data import Dataset


def lab_data(seed):
    """The linear-regression labs' data (seeds 000 to 002): X and Y of
        torch.manual_seed(seed)
        X = torch.arange(-3, 3, 0.1).view(-1, 1)
        f = 1 * X - 1
        Y = f + 0.1 * torch.randn(X.size())"""
    torch.manual_seed(seed)
    X = torch.arange(-3, 3, 0.1).view(-1, 1)
    f = 1 * X - 1
    Y = f + 0.1 * torch.randn(X.size())
    return X, Y


def criterion(yhat, y):
    return torch.mean((yhat - y) ** 2)


def step(w, b, lr):
    """The labs' update, after loss.backward()."""
    w.data = w.data - lr * w.grad.data
    b.data = b.data - lr * b.grad.data
    w.grad.data.zero_()
    b.grad.data.zero_()


class Data(Dataset):
    """The lab's dataset class (seed 001): the noise-free line."""

    def __init__(self):
        self.x = torch.arange(-3, 3, 0.1).view(-1, 1)
        self.y = 1 * self.x - 1
        self.len = self.x.shape[0]

    def __getitem__(self, index):
        return self.x[index], self.y[index]

    def __len__(self):
        return self.len


def knobs(args, flags=(), known=None):
    """A C program's arguments as {option: value string}, each of flags as True. With
    known, an option outside it (or flags) is an error in the generator's cases."""
    out, i = {}, 0
    while i < len(args):
        if args[i] in flags:
            out[args[i]] = True
            i += 1
        else:
            out[args[i]] = args[i + 1]
            i += 2
    if known is not None and set(out) - set(known) - set(flags):
        raise SystemExit("unknown options %s" % sorted(set(out) - set(known) - set(flags)))
    return out
