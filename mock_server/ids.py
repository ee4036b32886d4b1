"""Ids and seeded draws from the seed and a counter (the counter lives in the store).

A process never keeps a generator: each draw seeds one from ``(seed, stream, number)``, and the
number comes from a counter every process shares, so processes never repeat an id and the same
requests in the same order give the same draws.
"""

from __future__ import annotations

import functools
import hashlib

ID_LOW, ID_SPAN = 10**17, 9 * 10**17  # task and video ids: 18 digits


def draw_seed(seed: int, stream: str, number: int) -> int:
    digest = hashlib.blake2b(f"{seed}:{stream}:{number}".encode(), digest_size=16).digest()
    return int.from_bytes(digest, "big")


@functools.lru_cache(maxsize=64)
def _affine(seed: int) -> tuple[int, int]:
    factor = draw_seed(seed, "id-factor", 0) % ID_SPAN | 1
    while factor % 3 == 0 or factor % 5 == 0:  # coprime to 9 * 10**17 = 2^17 3^2 5^17
        factor += 2
    return factor, draw_seed(seed, "id-offset", 0) % ID_SPAN


def task_id_of(seed: int, number: int) -> str:
    """The id for the ``number``-th id of a seed: ``a * number + b`` modulo the id span, with
    ``a`` coprime to it: a bijection, so no two numbers share an id."""
    factor, offset = _affine(seed)
    return str(ID_LOW + (factor * number + offset) % ID_SPAN)


def number_of(seed: int, ident: str) -> int | None:
    """The counter number :func:`task_id_of` made ``ident`` from (its inverse), or None when
    ``ident`` is no id of that shape."""
    if not (len(ident) == 18 and ident.isascii() and ident.isdigit()):
        return None
    factor, offset = _affine(seed)
    return ((int(ident) - ID_LOW - offset) * pow(factor, -1, ID_SPAN)) % ID_SPAN
