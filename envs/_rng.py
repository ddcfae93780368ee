"""Counter-based random streams shared by the single maze and its batched twin.

Every maze owns one stream, fixed by a 64-bit seed; draw number ``c`` of that
stream is a pure function of ``(seed, c)``. The batched twin can therefore
draw for all N mazes at once with a handful of tensor ops, and still produce
bit-for-bit the numbers that N single envs draw one at a time.

The functions below use only ``*``, ``+``, ``^``, ``&`` and ``>>``, so one and
the same code runs on Python ``int``, numpy ``int64`` arrays and torch
``int64`` tensors (on any device). All values are kept in ``[0, 2**32)`` and
every multiplication is split into 16-bit halves, so no intermediate ever
exceeds ``2**49``: nothing overflows, signed right shifts behave like unsigned
ones, and the three back-ends agree exactly.

The mixer is MurmurHash3's 32-bit finalizer; it is a bijection, so each
stream is a permutation of ``2**32`` values. It is meant for drawing maze
cells reproducibly, not for cryptography.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np

#: Anything that supports integer ``* + ^ & >>``: ``int``, numpy or torch int64.
IntT = TypeVar("IntT")

MASK32 = 0xFFFFFFFF
MASK64 = 0xFFFFFFFFFFFFFFFF

# Odd constants: the golden-ratio Weyl increment and MurmurHash3's fmix32 ones.
_WEYL = 0x9E3779B1
_FMIX_C1 = 0x85EBCA6B
_FMIX_C2 = 0xC2B2AE35
# Arbitrary distinct tweaks so that the two key words differ for seed 0.
_KEY_TWEAK_1 = 0x243F6A88
_KEY_TWEAK_2 = 0xB7E15162


def _mul32(x: IntT, c: int) -> IntT:
    """Return ``(x * c) mod 2**32`` without any intermediate above ``2**49``.

    :param x: values in ``[0, 2**32)``.
    :param c: a constant in ``[0, 2**32)``.
    :return: the low 32 bits of the product.
    """
    c_lo = c & 0xFFFF
    c_hi = c >> 16
    # x*c = x*c_lo + (x*c_hi) * 2**16; only the low 16 bits of x*c_hi survive mod 2**32.
    return (x * c_lo + (((x * c_hi) & 0xFFFF) << 16)) & MASK32  # type: ignore[operator]


def _add32(a: IntT, b: IntT | int) -> IntT:
    """Return ``(a + b) mod 2**32`` for values in ``[0, 2**32)``.

    :param a: first addend.
    :param b: second addend.
    :return: the wrapped sum.
    """
    return (a + b) & MASK32  # type: ignore[operator]


def fmix32(h: IntT) -> IntT:
    """MurmurHash3's 32-bit finalizer, a bijective avalanche mixer.

    :param h: values in ``[0, 2**32)``.
    :return: mixed values in ``[0, 2**32)``.
    """
    h = h ^ (h >> 16)  # type: ignore[operator]
    h = _mul32(h, _FMIX_C1)
    h = h ^ (h >> 13)  # type: ignore[operator]
    h = _mul32(h, _FMIX_C2)
    return h ^ (h >> 16)  # type: ignore[operator]


def split_seed(seed: int) -> tuple[int, int]:
    """Reduce a non-negative integer seed to its low and high 32-bit words.

    :param seed: any non-negative integer; it is taken modulo ``2**64``.
    :return: ``(low, high)`` words.
    """
    seed &= MASK64
    return seed & MASK32, seed >> 32


def stream_keys(seed_lo: IntT, seed_hi: IntT) -> tuple[IntT, IntT]:
    """Derive the two 32-bit keys of a stream from the two words of its seed.

    :param seed_lo: low 32 bits of the seed.
    :param seed_hi: high 32 bits of the seed.
    :return: ``(key1, key2)``; both depend on all 64 seed bits.
    """
    key1 = fmix32(_add32(fmix32(seed_lo ^ _KEY_TWEAK_1), seed_hi))  # type: ignore[operator]
    key2 = fmix32(_add32(fmix32(seed_hi ^ _KEY_TWEAK_2), seed_lo))  # type: ignore[operator]
    return key1, key2


def draw_u32(key1: IntT, key2: IntT, counter: IntT) -> IntT:
    """Draw number ``counter`` of the stream with keys ``(key1, key2)``.

    :param key1: first stream key (from :func:`stream_keys`).
    :param key2: second stream key.
    :param counter: index of the draw within the stream (taken modulo ``2**32``).
    :return: a uniformly distributed value in ``[0, 2**32)``.
    """
    # A Weyl sequence offset by key1, then two keyed avalanche rounds.
    x = fmix32(_add32(_mul32(counter & MASK32, _WEYL), key1))  # type: ignore[operator]
    return fmix32(x ^ key2)  # type: ignore[operator]


def below(u: IntT, n: int) -> IntT:
    """Map uniform 32-bit values to ``[0, n)`` by multiply-shift (Lemire).

    The bias is at most ``n / 2**32`` (below ``2**-25`` for an 11x11 maze).

    :param u: values in ``[0, 2**32)``.
    :param n: the number of outcomes, ``1 <= n < 2**31``.
    :return: values in ``[0, n)``.
    """
    return (u * n) >> 32  # type: ignore[operator]


def entropy_seed() -> int:
    """Return a fresh 64-bit seed from the operating system's entropy.

    :return: an integer in ``[0, 2**64)``.
    """
    return int(np.random.SeedSequence().entropy) & MASK64
