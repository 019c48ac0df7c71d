"""VARCO's learned halo codec: a linear encoder before the wire and a decoder after it, trained with the model.

The halo exchange (:mod:`.exchange`) sends the first ``k = ceil(f / ratio)``
encoder units of each row; a schedule raises ``ratio``'s inverse over training.
SAR's backward needs the decoded halo values again (the decoder's gradient), so
it re-fetches the code and backpropagates through the decoder and encoder with
:func:`through_decoder` / :func:`through_encoder`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class LearnedCodec(nn.Module):
    """VARCO's learned low-rank codec: encoder f -> k and decoder k -> f, the first k = ceil(f / ratio) units used.

    Initialised as an orthogonal projection and its transpose (so truncating to
    k units starts as projecting onto k random directions), then trained with the model.
    """

    def __init__(self, f: int):
        super().__init__()
        q = torch.linalg.qr(torch.randn(f, f))[0]
        self.enc_weight = nn.Parameter(q.clone())
        self.enc_bias = nn.Parameter(torch.zeros(f))
        self.dec_weight = nn.Parameter(q.t().contiguous())
        self.dec_bias = nn.Parameter(torch.zeros(f))
        self.f = f

    def latent(self, ratio: float) -> int:
        return max(1, min(self.f, math.ceil(self.f / ratio)))

    def params(self) -> tuple:
        return self.enc_weight, self.enc_bias, self.dec_weight, self.dec_bias


def encode(x, ew, eb, k):
    """The first ``k`` units of the encoder: ``x ew[:k].T + eb[:k]``."""
    return F.linear(x, ew[:k], eb[:k])


def decode(c, dw, db, k):
    """The decoder from ``k`` units: ``c dw[:, :k].T + db``."""
    return F.linear(c, dw[:, :k], db)


def through_decoder(code: torch.Tensor, lparams, k: int, gh: torch.Tensor, gp: list) -> torch.Tensor:
    """Backpropagate the gradient ``gh`` of a decoded halo through the learned decoder: gradient of the code
    (returned), decoder weight and bias gradients added to ``gp[2]``, ``gp[3]``."""
    code = code.detach().requires_grad_()
    with torch.enable_grad():
        h = decode(code, lparams[2], lparams[3], k)
        gcode, gdw, gdb = torch.autograd.grad(h, (code, lparams[2], lparams[3]), gh)
    gp[2] += gdw
    gp[3] += gdb
    return gcode


def through_encoder(z: torch.Tensor, idx: torch.Tensor, gcode: torch.Tensor, lparams, k: int,
                     gp: list) -> torch.Tensor:
    """Backpropagate the gradient of the code sent (rows ``idx`` of ``z``) through the learned encoder:
    gradient of those rows (returned), encoder gradients added to ``gp[0]``, ``gp[1]``."""
    with torch.enable_grad():
        zs = z[idx].detach().requires_grad_()
        c = encode(zs, lparams[0], lparams[1], k)
        gzs, gew, geb = torch.autograd.grad(c, (zs, lparams[0], lparams[1]), gcode)
    gp[0] += gew
    gp[1] += geb
    return gzs
