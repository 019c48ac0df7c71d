"""Scale layouts beyond the plain one: the 128x4 blocked layout of cuBLAS block-scaled GEMM."""

from __future__ import annotations

import torch


def swizzle_scales(scales: torch.Tensor) -> torch.Tensor:
    """E8M0 scales (rows, blocks) -> the 128x4 blocked layout of cuBLAS block-scaled GEMM.

    The matrix is padded with zeros to a multiple of 128 rows and 4 columns;
    each 128x4 tile is stored as 32 rows of 16 bytes, row ``r`` holding the
    scales of rows ``r, r+32, r+64, r+96`` of the tile (cuBLAS docs,
    "1D Block Scaling Factors Layout"). Leading dimensions are folded into rows.
    Returns a flat uint8 tensor of ``ceil(rows/128)*128 * ceil(blocks/4)*4`` bytes.
    """
    if scales.dim() < 2:
        raise ValueError(f"scales must have at least 2 dimensions (rows, blocks), got shape {list(scales.shape)}")
    s = scales.view(torch.uint8).reshape(-1, scales.shape[-1])
    rows, cols = s.shape
    rb, cb = -(-rows // 128), -(-cols // 4)
    padded = torch.zeros(rb * 128, cb * 4, dtype=torch.uint8, device=s.device)
    padded[:rows, :cols] = s
    tiles = padded.view(rb, 128, cb, 4).permute(0, 2, 1, 3)  # (rb, cb, 128, 4)
    tiles = tiles.reshape(-1, 4, 32, 4).transpose(1, 2)  # row r of a tile: rows r, r+32, r+64, r+96
    return tiles.reshape(-1).contiguous()
