"""Point-to-point transport of the halo exchange over torch.distributed, with exact byte counts and timeouts.

Only ``isend`` / ``irecv`` of uint8 buffers (which gloo and NCCL both have) plus
``all_gather`` / ``all_reduce`` for the one-off plan check and the gradients. The
receiver knows every buffer's length from the plan and the codec, so nothing
but payload crosses the wire. Every wait is bounded by the timeout; a peer that
died or raised makes the wait fail, and :class:`HaloExchangeError` says which
rank, which peer and which phase (:meth:`Comm.phase`).

No single message is larger than ``max_message_bytes``: a larger payload goes
as consecutive chunks, cut at the same offsets on both sides (the limit is
agreed once, at the plan check), so chunks carry no header of their own and the
payload bytes are those of one message. gloo keeps a whole message in memory on
both sides; DGL's partitioning hit gloo running out of memory on 10 GB
messages (dgl #5505).
"""

from __future__ import annotations

import contextlib
import datetime
import weakref

import torch
import torch.distributed as dist


class HaloExchangeError(RuntimeError):
    """A halo exchange failed: a peer died, raised, timed out, or sent what the plan does not say."""


class Comm:
    """One rank's endpoint: ``sendrecv`` moves buffers; ``bytes`` counts what this rank handed over, by kind.

    ``wire_device`` is where torch.distributed's tensors live: the CPU for gloo, this rank's GPU for NCCL.
    Tensors on another device are staged through it (a model on a GPU with gloo copies the packed bytes to
    the host and back; the byte counts are the same)."""

    def __init__(self, rank: int, world: int, timeout: float = 60.0, wire_device: "torch.device | str" = "cpu",
                 max_message_bytes: int = 256 << 20):
        if max_message_bytes < 16:
            raise ValueError(f"max_message_bytes must be >= 16 (a message header), got {max_message_bytes}")
        self.rank, self.world, self.timeout = rank, world, float(timeout)
        self.wire_device = torch.device(wire_device)
        self.max_message_bytes = int(max_message_bytes)
        self.model_device = torch.device("cpu")  # where the exchanged rows live (the trainer sets it)
        self.bytes = {"halo": 0, "allreduce": 0, "eval": 0, "control": 0}
        self.kind = "halo"  # which counter sends go to (:meth:`phase` switches it, "eval" for evaluation)
        self.labels: tuple = ()  # the phases entered, outermost first (:meth:`phase`)
        self.epoch: "int | None" = None  # the trainer's epoch, for faults injected at one epoch
        self.on_phase = None  # called with each phase's label as it is entered (tests inject faults with it)
        self.live_halo = 0  # bytes of received halo tensors alive now, and the peak
        self.peak_halo = 0
        self.calls = 0
        self.messages = 0  # point-to-point messages sent (headers and chunks), and the largest one's bytes
        self.largest_message = 0

    @property
    def where(self) -> str:
        """What the transport is doing, for error messages: ``"epoch 3, layer 1 forward, forward exchange"``."""
        return ", ".join(self.labels)

    @contextlib.contextmanager
    def phase(self, label: str, kind: "str | None" = None, within: "tuple | None" = None):
        """Inside the block the transport does ``label`` (nested blocks add to the enclosing labels; ``within``
        replaces them: a backward pass runs in the labels its forward saved). ``kind`` switches the counter the
        block's sends go to. ``on_phase(label)`` runs on entry."""
        saved = self.labels, self.kind
        self.labels = (self.labels if within is None else tuple(within)) + (label,)
        if kind is not None:
            self.kind = kind
        try:
            if self.on_phase is not None:
                self.on_phase(label)
            yield
        finally:
            self.labels, self.kind = saved

    def _chunks(self, t: torch.Tensor):
        """``t`` (flat) cut into consecutive pieces of at most ``max_message_bytes``."""
        step = self.max_message_bytes
        return [t[i:i + step] for i in range(0, t.numel(), step)]

    def _wait(self, works, what: str) -> None:
        for peer, w in works:
            try:
                ok = w.wait(datetime.timedelta(seconds=self.timeout))
            except Exception as e:  # noqa: BLE001 - gloo raises RuntimeError or DistBackendError
                raise self._fail(peer, what, e) from e
            if ok is False:
                raise HaloExchangeError(f"rank {self.rank}: {what} with rank {peer} timed out after "
                                        f"{self.timeout:g} s ({self.where})")

    def _fail(self, peer, what: str, e: Exception) -> HaloExchangeError:
        return HaloExchangeError(f"rank {self.rank}: {what} with rank {peer} failed ({self.where}): the peer died, "
                                 f"raised or timed out (timeout {self.timeout:g} s): {e}")

    def sendrecv(self, sends: dict, recv_sizes: dict, device=None, shapes: dict | None = None,
                 recv_shapes: dict | None = None) -> dict:
        """Send ``sends[p]`` (flat uint8) to each p and receive ``recv_sizes[p]`` bytes from each p, all at once.

        Each message is preceded by a 16-byte header (int64 rows, width, as the sender sees them), checked
        against ``recv_shapes[p]`` before the payload is received, so ranks that disagree on a shape fail
        with a clear error instead of reading a wrong-sized buffer. Headers count as ``bytes["control"]``.
        """
        shapes = shapes or {p: (-1, -1) for p in sends}
        recv_shapes = recv_shapes or {p: (-1, -1) for p in recv_sizes}
        for t in sends.values():
            if t.dtype != torch.uint8 or t.dim() != 1:
                raise HaloExchangeError(f"rank {self.rank}: a send buffer must be flat uint8, got {t.dtype} "
                                        f"{list(t.shape)}")
        works, heads, head_sends, out = [], [], [], {}
        peer = None
        wire = self.wire_device
        try:
            for peer, t in sends.items():
                h = torch.tensor([*shapes[peer]], dtype=torch.int64).view(torch.uint8).to(wire)
                head_sends.append((peer, dist.isend(h, dst=peer)))
                works.append(head_sends[-1])
                self.bytes["control"] += h.numel()
                chunks = self._chunks(t.contiguous().to(wire))
                for c in chunks:
                    works.append((peer, dist.isend(c, dst=peer)))
                self.bytes[self.kind] += t.numel()
                self.messages += 1 + len(chunks)
                self.largest_message = max(self.largest_message, h.numel(), *(c.numel() for c in chunks))
            for peer in recv_sizes:
                h = torch.empty(16, dtype=torch.uint8, device=wire)
                heads.append((peer, dist.irecv(h, src=peer), h))
        except Exception as e:  # noqa: BLE001 - gloo raises when a peer's connection is gone
            raise self._fail(peer, "halo exchange", e) from e
        self._wait([(p, w) for p, w, _ in heads], "halo exchange (header)")
        for peer, _, h in heads:
            got = tuple(h.view(torch.int64).tolist())
            if got != tuple(recv_shapes[peer]):
                # Our own headers go out before we stop, so that each peer sees the mismatch too rather than a
                # closed connection (a rank that raised first used to leave its peer a transport error).
                with contextlib.suppress(HaloExchangeError):
                    self._wait(head_sends, "halo exchange (header)")
                raise HaloExchangeError(f"rank {self.rank}: rank {peer} sends rows of shape {list(got)}, the plan "
                                        f"here expects {list(recv_shapes[peer])} ({self.where}): mismatched plan or "
                                        f"shape")
        try:
            for peer, n in recv_sizes.items():
                buf = torch.empty(int(n), dtype=torch.uint8, device=wire)
                out[peer] = buf
                for c in self._chunks(buf):  # views: the chunks land in place
                    works.append((peer, dist.irecv(c, src=peer)))
        except Exception as e:  # noqa: BLE001
            raise self._fail(peer, "halo exchange", e) from e
        self.calls += 1
        self._wait(works, "halo exchange")
        if device is not None:
            out = {p: b.to(device) for p, b in out.items()}
        return out

    def track(self, t: torch.Tensor) -> torch.Tensor:
        """Count ``t`` as live halo memory until it is freed (for the SAR vs all-at-once memory figures)."""
        n = t.numel() * t.element_size()
        if n:
            self.live_halo += n
            self.peak_halo = max(self.peak_halo, self.live_halo)
            weakref.finalize(t, self._free, n)
        return t

    def _free(self, n: int) -> None:
        self.live_halo -= n

    def all_reduce_(self, t: torch.Tensor, count: bool = True) -> torch.Tensor:
        """Sum ``t`` over the ranks, in place (staged through the wire device when ``t`` lives elsewhere)."""
        if self.world > 1:
            if count:
                self.bytes["allreduce"] += t.numel() * t.element_size()
            w = t.to(self.wire_device)
            try:
                dist.all_reduce(w)
            except Exception as e:  # noqa: BLE001
                raise HaloExchangeError(f"rank {self.rank}: all_reduce failed ({self.where}): a peer died, raised "
                                        f"or timed out (timeout {self.timeout:g} s): {e}") from e
            if w is not t:
                t.copy_(w)
        return t

    def broadcast_(self, t: torch.Tensor, src: int) -> torch.Tensor:
        """``src``'s ``t`` on every rank, in place (staged through the wire device)."""
        if self.world > 1:
            w = t.to(self.wire_device)
            try:
                dist.broadcast(w, src)
            except Exception as e:  # noqa: BLE001
                raise HaloExchangeError(f"rank {self.rank}: broadcast failed ({self.where}): {e}") from e
            if w is not t:
                t.copy_(w)
        return t

    def all_gather(self, t: torch.Tensor) -> torch.Tensor:
        """Every rank's ``t`` stacked, (world, ...), on ``t``'s device."""
        if self.world == 1:
            return t[None]
        w = t.to(self.wire_device)
        out = [torch.empty_like(w) for _ in range(self.world)]
        try:
            dist.all_gather(out, w)
        except Exception as e:  # noqa: BLE001
            raise HaloExchangeError(f"rank {self.rank}: all_gather failed ({self.where}): {e}") from e
        return torch.stack(out).to(t.device)


def verify_plan(comm: Comm, send_counts: list, recv_counts: list) -> None:
    """Check once that what each rank sends each other rank is what that rank expects to receive, and that
    every rank cuts messages at the same size (:class:`Comm`'s chunks carry no header)."""
    w = comm.world
    if len(send_counts) != w or len(recv_counts) != w:
        raise ValueError(f"rank {comm.rank}: the plan has {len(send_counts)} send and {len(recv_counts)} receive "
                         f"lists, expected {w} (the world size)")
    mine = torch.tensor([send_counts, recv_counts, [comm.max_message_bytes] * w], dtype=torch.int64)
    with comm.phase("plan check"):
        every = comm.all_gather(mine)  # (w, 3, w)
    limits = every[:, 2, 0].tolist()
    if len(set(limits)) > 1:
        raise HaloExchangeError(f"rank {comm.rank}: the ranks cut messages at different sizes (max_message_bytes "
                                f"per rank: {limits}): give every rank the same --max-message-mb")
    sends, recvs = every[:, 0], every[:, 1]
    bad = [(s, d) for s in range(w) for d in range(w) if s != d and int(sends[s, d]) != int(recvs[d, s])]
    if bad:
        s, d = bad[0]
        raise HaloExchangeError(f"rank {comm.rank}: mismatched halo plan: rank {s} sends {int(sends[s, d])} rows to "
                                f"rank {d}, which expects {int(recvs[d, s])} ({len(bad)} mismatched pairs)")
