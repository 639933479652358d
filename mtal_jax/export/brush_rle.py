"""Label Studio's brush RLE: the mask encoding of ``brushlabels`` results (pure NumPy).

Label Studio stores a brush mask as the run-length code of its flattened RGBA raster
(H * W * 4 bytes, row-major, each pixel's value repeated in its 4 channels), packed by the
bit-level scheme of the JavaScript package ``rle-pack`` (thi.ng/umbrella), the one Label
Studio's editor and its converter (``label_studio_sdk.converter.brush``) decode:

  header: 32 bits value count N, 5 bits (word size - 1), 4 x 4 bits (run-length field
  sizes - 1); then runs until N values are out:
    1 bit ``repeat``, 2 bits index i into the field sizes, field_sizes[i] bits (length - 1),
    then one word (repeat = 1: the value of the whole run) or ``length`` words (literal
    values, repeat = 0);
  the bit string is padded with zeros to whole bytes.

This module writes word size 8 and field sizes (3, 4, 8, 16), as Label Studio's converter
does, with every run as a repeat run (the shortest field that holds it; runs longer than
2**16 are split), so a mask of R runs costs about 11 + 16 bits per run.
"""

from __future__ import annotations

import numpy as np

_WORD_BITS = 8
_FIELD_BITS = (3, 4, 8, 16)


def _bits(value: int, width: int) -> str:
    return format(value, f"0{width}b")


def encode(mask: np.ndarray) -> list[int]:
    """Encodes a 2-D mask as Label Studio brush RLE.

    Args:
      mask: [H, W] bool (or 0/nonzero) mask; True pixels become value 255.

    Returns:
      The RLE byte values (``value.rle`` of a ``brushlabels`` result).

    Raises:
      ValueError: when ``mask`` is not 2-D or has more than 2**30 pixels.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"brush mask must be 2-D [H, W], got shape {mask.shape}")
    if mask.size * 4 >= 2**32:
        raise ValueError(f"brush mask of {mask.size} pixels is too large for RLE")
    flat = np.where(mask.reshape(-1) != 0, 255, 0).astype(np.uint8)
    num = flat.size * 4  # RGBA: every pixel value repeated 4 times
    parts = [_bits(num, 32), _bits(_WORD_BITS - 1, 5)]
    parts += [_bits(f - 1, 4) for f in _FIELD_BITS]
    if flat.size:
        change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
        starts = np.concatenate([[0], change])
        lengths = np.diff(np.concatenate([starts, [flat.size]])) * 4
        for start, length in zip(starts.tolist(), lengths.tolist()):
            value = _bits(int(flat[start]), _WORD_BITS)
            while length > 0:
                run = min(length, 2**16)
                index = next(i for i, f in enumerate(_FIELD_BITS) if run - 1 < 2**f)
                parts.append("1" + _bits(index, 2) + _bits(run - 1, _FIELD_BITS[index]) + value)
                length -= run
    bits = "".join(parts)
    bits += "0" * (-len(bits) % 8)
    packed = np.packbits(np.frombuffer(bits.encode("ascii"), np.uint8) - ord("0"))
    return packed.tolist()


def decode(rle: list[int], height: int, width: int) -> np.ndarray:
    """Decodes Label Studio brush RLE into a mask (the ``rle-pack`` decoder).

    Args:
      rle: byte values of ``value.rle``.
      height: original_height of the result.
      width: original_width of the result.

    Returns:
      [height, width] bool, True where the alpha channel is nonzero.

    Raises:
      ValueError: when the code is truncated or does not hold height * width * 4 values.
    """
    bits = np.unpackbits(np.asarray(rle, np.uint8))
    pos = 0

    def read(width_bits: int) -> int:
        nonlocal pos
        if pos + width_bits > bits.size:
            raise ValueError("brush RLE is truncated")
        field = bits[pos : pos + width_bits]
        pos += width_bits
        return int("".join(map(str, field.tolist())) or "0", 2)

    num = read(32)
    if num != height * width * 4:
        raise ValueError(f"brush RLE holds {num} values, expected {height}*{width}*4")
    word = read(5) + 1
    fields = [read(4) + 1 for _ in range(4)]
    out = np.zeros(num, np.uint8)
    i = 0
    while i < num:
        repeat = read(1)
        j = min(i + 1 + read(fields[read(2)]), num)
        if repeat:
            out[i:j] = read(word)
        else:
            for m in range(i, j):
                out[m] = read(word)
        i = j
    return out.reshape(height, width, 4)[..., 3] != 0
