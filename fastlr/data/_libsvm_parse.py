"""Compiled LIBSVM / svmlight parsing: lines of ``label [qid:q] index:value ... [# comment]``.

The parser reads a byte buffer and writes CSR arrays. Decimal numbers are
converted with the Clinger fast path and the Eisel-Lemire algorithm, as
fast_float does (Lemire, "Number parsing at a gigabyte per second", 2021):
both give the correctly rounded float64 of any decimal with at most 19
significant digits. A longer decimal is converted from its first 19 digits,
rounded down and up; when the two results differ, the parser stops and asks
the caller for the value (Python's ``float``), then continues with it. The
kernels therefore agree bit for bit with ``float(token)``.

Everything here compiles with ``exact=True``: reassociation or reciprocal
multiplication would change the rounding of ``w / 10**k``.
"""

import numpy as np

from .._jit import kernel

# Status codes of parse_lines. OK and NEED_VALUE are not errors.
OK = 0
NEED_VALUE = 1
BAD_LABEL = 2
MULTILABEL = 3
BAD_INDEX = 4
BAD_VALUE = 5
NONFINITE_VALUE = 6
NONFINITE_LABEL = 7
UNSORTED = 8
INDEX_RANGE = 9
INDEX_TOO_LARGE = 10

# Largest column index that fits the int32 indices of the blocks.
MAX_INDEX = np.iinfo(np.int32).max - 1

_SPACE, _TAB, _CR, _LF = 32, 9, 13, 10
_HASH, _COLON, _COMMA, _DOT = 35, 58, 44, 46
_PLUS, _MINUS = 43, 45

_MAX_DIGITS = 19
_MASK32 = np.uint64(0xFFFFFFFF)
_SHIFT32 = np.uint64(32)
_ONE = np.uint64(1)
_ZERO = np.uint64(0)
_PRECISION_MASK = np.uint64(0x1FF)  # 64 - (52 + 3) low bits of the high product
_HIDDEN_BIT = np.uint64(1 << 52)
_TWO53 = np.uint64(1 << 53)
_SMALLEST_POWER = -342
_LARGEST_POWER = 308


def power_of_five_table():
    """128-bit approximations of ``5**q`` for ``q`` in [-342, 308], as fast_float tabulates them.

    Returns
    -------
    table : ndarray of shape (2 * 651,), uint64
        ``table[2 * (q + 342)]`` is the high word, ``table[2 * (q + 342) + 1]``
        the low word, of a 128-bit number with its top bit set.
    """
    words = []
    for q in range(_SMALLEST_POWER, 0):
        power5 = 5**-q
        z = power5.bit_length()
        b = z + 127 if q >= -27 else 2 * z + 128
        c = 2**b // power5 + 1
        while c >= 1 << 128:
            c //= 2
        words.append(c)
    for q in range(_LARGEST_POWER + 1):
        power5 = 5**q
        while power5 < 1 << 127:
            power5 *= 2
        while power5 >= 1 << 128:
            power5 //= 2
        words.append(power5)
    table = np.empty(2 * len(words), dtype=np.uint64)
    for i, c in enumerate(words):
        table[2 * i] = c >> 64
        table[2 * i + 1] = c & ((1 << 64) - 1)
    return table


POW5 = power_of_five_table()
# 1e0 .. 1e22: the powers of ten that float64 holds exactly (Clinger's fast path).
POW10 = np.array([10.0**k for k in range(23)])


@kernel(exact=True)
def _mul128(a, b):
    """High and low words of the 128-bit product of two uint64."""
    a_lo, a_hi = a & _MASK32, a >> _SHIFT32
    b_lo, b_hi = b & _MASK32, b >> _SHIFT32
    p0 = a_lo * b_lo
    p1 = a_lo * b_hi
    p2 = a_hi * b_lo
    p3 = a_hi * b_hi
    middle = (p0 >> _SHIFT32) + (p1 & _MASK32) + (p2 & _MASK32)
    high = p3 + (p1 >> _SHIFT32) + (p2 >> _SHIFT32) + (middle >> _SHIFT32)
    low = (middle << _SHIFT32) | (p0 & _MASK32)
    return high, low


@kernel(exact=True)
def _leading_zeros(x):
    """Leading zero bits of a non-zero uint64."""
    n = 0
    for shift in (32, 16, 8, 4, 2, 1):
        if x >> np.uint64(64 - shift) == _ZERO:
            n += shift
            x = x << np.uint64(shift)
    return n


@kernel(exact=True)
def _eisel_lemire(q, w, pow5):
    """The float64 nearest to ``w * 10**q`` for a non-zero uint64 ``w``.

    fast_float's ``compute_float``: a 128-bit product with the table of
    ``5**q``, exact enough for every 19-digit ``w`` (Mushtak and Lemire, 2023).
    """
    if q < _SMALLEST_POWER:
        return 0.0
    if q > _LARGEST_POWER:
        return np.inf
    lz = _leading_zeros(w)
    w = w << np.uint64(lz)
    index = 2 * (q - _SMALLEST_POWER)
    high, low = _mul128(w, pow5[index])
    if high & _PRECISION_MASK == _PRECISION_MASK:
        second_high, _ = _mul128(w, pow5[index + 1])
        low = low + second_high
        if second_high > low:
            high = high + _ONE
    upper = np.int64(high >> np.uint64(63))
    shift = np.uint64(upper + 9)
    mantissa = high >> shift
    power2 = (((152170 + 65536) * q) >> 16) + 63 + upper - lz + 1023
    if power2 <= 0:  # subnormal
        if -power2 + 1 >= 64:
            return 0.0
        mantissa = mantissa >> np.uint64(-power2 + 1)
        mantissa = mantissa + (mantissa & _ONE)
        mantissa = mantissa >> _ONE
        return np.ldexp(np.float64(mantissa), -1074)
    if low <= _ONE and -4 <= q <= 23 and mantissa & np.uint64(3) == _ONE:
        if mantissa << shift == high:
            mantissa = mantissa & ~_ONE  # exactly halfway: round to even, down
    mantissa = mantissa + (mantissa & _ONE)
    mantissa = mantissa >> _ONE
    if mantissa >= _TWO53:
        mantissa = _HIDDEN_BIT
        power2 += 1
    if power2 >= 0x7FF:
        return np.inf
    return np.ldexp(np.float64(mantissa), power2 - 1075)


@kernel(exact=True)
def _is_delimiter(c):
    """True for the bytes that end a number: whitespace, a comment, a colon, a comma."""
    return (
        c == _SPACE or c == _TAB or c == _CR or c == _LF or c == _HASH or c == _COLON or c == _COMMA
    )


@kernel(exact=True)
def _lower(c):
    return c | 32


@kernel(exact=True)
def _parse_special(buf, pos, end):
    """``nan``, ``inf`` or ``infinity`` (any case) at ``pos``: (ok, value, next position)."""
    names = ("nan", "infinity", "inf")
    values = (np.nan, np.inf, np.inf)
    for k in range(3):
        name = names[k]
        n = len(name)
        if pos + n <= end:
            match = True
            for i in range(n):
                if _lower(buf[pos + i]) != ord(name[i]):
                    match = False
                    break
            if match and (pos + n == end or _is_delimiter(buf[pos + n])):
                return True, values[k], pos + n
    return False, 0.0, pos


@kernel(exact=True)
def parse_float(buf, pos, end, pow5, pow10):
    """Parse the decimal number that starts at ``buf[pos]``.

    Parameters
    ----------
    buf : ndarray of uint8
    pos, end : int
        Start of the number; end of the readable bytes.
    pow5, pow10 : ndarray
        ``POW5`` and ``POW10``.

    Returns
    -------
    status : int
        ``OK``, ``BAD_VALUE`` (no number here) or ``NEED_VALUE`` (more than
        19 digits whose rounding the fast algorithms cannot decide).
    value : float
    next : int
        Position after the number's last byte.
    """
    negative = False
    if pos < end and (buf[pos] == _MINUS or buf[pos] == _PLUS):
        negative = buf[pos] == _MINUS
        pos += 1
    if pos < end and (_lower(buf[pos]) == 110 or _lower(buf[pos]) == 105):  # n, i
        ok, value, pos = _parse_special(buf, pos, end)
        return (OK if ok else BAD_VALUE), (-value if negative else value), pos
    w = _ZERO
    digits = 0
    exponent = 0
    truncated = False
    seen_digit = False
    while pos < end:
        d = np.int64(buf[pos]) - 48
        if d < 0 or d > 9:
            break
        seen_digit = True
        if digits < _MAX_DIGITS:
            w = w * np.uint64(10) + np.uint64(d)
            if w != _ZERO:
                digits += 1
        else:
            exponent += 1
            truncated = truncated or d != 0
        pos += 1
    if pos < end and buf[pos] == _DOT:
        pos += 1
        while pos < end:
            d = np.int64(buf[pos]) - 48
            if d < 0 or d > 9:
                break
            seen_digit = True
            if digits < _MAX_DIGITS:
                w = w * np.uint64(10) + np.uint64(d)
                exponent -= 1
                if w != _ZERO:
                    digits += 1
            else:
                truncated = truncated or d != 0
            pos += 1
    if not seen_digit:
        return BAD_VALUE, 0.0, pos
    if pos < end and _lower(buf[pos]) == 101:  # e
        pos += 1
        exp_negative = False
        if pos < end and (buf[pos] == _MINUS or buf[pos] == _PLUS):
            exp_negative = buf[pos] == _MINUS
            pos += 1
        exp_value = 0
        exp_digits = 0
        while pos < end:
            d = np.int64(buf[pos]) - 48
            if d < 0 or d > 9:
                break
            if exp_value < 100000:
                exp_value = 10 * exp_value + d
            exp_digits += 1
            pos += 1
        if exp_digits == 0:
            return BAD_VALUE, 0.0, pos
        exponent += -exp_value if exp_negative else exp_value
    if w == _ZERO:
        value = 0.0
    elif not truncated and -22 <= exponent <= 22 and w <= _TWO53:
        value = (
            np.float64(w) * pow10[exponent] if exponent >= 0 else np.float64(w) / pow10[-exponent]
        )
    else:
        value = _eisel_lemire(exponent, w, pow5)
        if truncated and _eisel_lemire(exponent, w + _ONE, pow5) != value:
            return NEED_VALUE, 0.0, pos
    return OK, (-value if negative else value), pos


@kernel(exact=True)
def _skip_blanks(buf, pos, end):
    while pos < end and (buf[pos] == _SPACE or buf[pos] == _TAB or buf[pos] == _CR):
        pos += 1
    return pos


@kernel(exact=True)
def _skip_line(buf, pos, end):
    """Position after the next newline (or ``end``)."""
    while pos < end and buf[pos] != _LF:
        pos += 1
    return min(pos + 1, end)


@kernel(exact=True)
def _ends_token(buf, pos, end):
    """True when the byte at ``pos`` ends a label or a value (whitespace, comment, end)."""
    if pos >= end:
        return True
    c = buf[pos]
    return c == _SPACE or c == _TAB or c == _CR or c == _LF or c == _HASH


@kernel(exact=True)
def _number(buf, pos, end, pow5, pow10, over_pos, over_val):
    """parse_float, or the caller's value for a number it converted (see parse_lines)."""
    status, value, after = parse_float(buf, pos, end, pow5, pow10)
    if status == NEED_VALUE:
        k = np.searchsorted(over_pos, pos)
        if k < over_pos.shape[0] and over_pos[k] == pos:
            return OK, over_val[k], after
    return status, value, after


@kernel(exact=True)
def count_lines(buf, start, end):
    """Newlines and colons in ``buf[start:end]``: bounds on the rows and non-zeros there."""
    lines = 0
    colons = 0
    for i in range(start, end):
        c = buf[i]
        lines += c == _LF
        colons += c == _COLON
    return lines, colons


@kernel(exact=True)
def parse_lines(
    buf, pos, end, max_rows, offset, n_features, out, state, over_pos, over_val, pow5, pow10
):
    """Parse lines of ``buf[pos:end]`` into CSR arrays, appending at ``state``'s counters.

    Blank lines and lines that start with ``#`` are skipped; ``qid:`` fields
    are ignored; indices must increase along a line. Parsing stops after
    ``max_rows`` rows, at ``end``, at an error, or at a number only Python can
    round (``NEED_VALUE``: its line is left unparsed; call again with the
    number's position and value added to ``over_pos`` and ``over_val``).

    Parameters
    ----------
    buf : ndarray of uint8
        Whole lines: ``end`` is after a newline or at the end of the file.
    pos, end : int
    max_rows : int
        Rows to parse at most in this call.
    offset : int
        Subtracted from every index (1 for one-based files).
    n_features : int
        Indices (after ``offset``) must be below it; ``-1``: no bound.
    out : tuple
        ``(labels, indptr, indices, data, row_line)``: float64, int32, int32,
        float64, int64 arrays with room for the rows and non-zeros.
        ``row_line[r]`` receives row ``r``'s line number.
    state : ndarray of int64, shape (8,)
        ``pos, rows, nnz, line, error position, error detail, min index,
        max index``; read and updated in place. ``indptr[rows]`` must hold
        ``nnz`` on entry.
    over_pos, over_val : ndarray
        Sorted positions of the numbers the caller converted, and their values.
    pow5, pow10 : ndarray
        ``POW5`` and ``POW10``.

    Returns
    -------
    status : int
        ``OK``, ``NEED_VALUE`` or an error code; the error's token starts at
        ``state[4]`` and its line is ``state[3]``.
    """
    labels, indptr, indices, data, row_line = out
    rows, nnz, line = state[1], state[2], state[3]
    min_index, max_index = state[6], state[7]
    stop_rows = rows + max_rows
    status = OK
    while pos < end and rows < stop_rows:
        line_start = pos
        pos = _skip_blanks(buf, pos, end)
        if pos >= end or buf[pos] == _LF or buf[pos] == _HASH:
            pos = _skip_line(buf, pos, end)
            line += 1
            continue
        status, label, after = _number(buf, pos, end, pow5, pow10, over_pos, over_val)
        if status == OK and after < end and buf[after] == _COMMA:
            status = MULTILABEL
        elif status == OK and not _ends_token(buf, after, end):
            status = BAD_LABEL
        elif status == BAD_VALUE:
            status = BAD_LABEL
        elif status == OK and not np.isfinite(label):
            status = NONFINITE_LABEL
        if status != OK:
            state[4] = pos
            if status == NEED_VALUE:
                pos = line_start
            break
        pos = after
        row_nnz = nnz
        previous = np.int64(-1)
        while True:
            pos = _skip_blanks(buf, pos, end)
            if pos >= end or buf[pos] == _LF or buf[pos] == _HASH:
                break
            token = pos
            if (
                pos + 4 <= end
                and _lower(buf[pos]) == 113  # q
                and _lower(buf[pos + 1]) == 105  # i
                and _lower(buf[pos + 2]) == 100  # d
                and buf[pos + 3] == _COLON
            ):
                while not _ends_token(buf, pos, end):
                    pos += 1
                continue
            index = np.int64(0)
            n_digits = 0
            while pos < end:
                d = np.int64(buf[pos]) - 48
                if d < 0 or d > 9:
                    break
                if index <= MAX_INDEX:
                    index = 10 * index + d
                n_digits += 1
                pos += 1
            if n_digits == 0 or pos >= end or buf[pos] != _COLON:
                status = BAD_INDEX
                break
            if index > MAX_INDEX:
                status = INDEX_TOO_LARGE
                break
            status, value, after = _number(buf, pos + 1, end, pow5, pow10, over_pos, over_val)
            if status == OK and not _ends_token(buf, after, end):
                status = BAD_VALUE
            if status != OK:
                token = pos + 1
                break
            if not np.isfinite(value):
                status = NONFINITE_VALUE
                token = pos + 1
                break
            if index <= previous:
                status = UNSORTED
                state[5] = previous + offset
                break
            column = index - offset
            if column < 0 or (n_features >= 0 and column >= n_features):
                status = INDEX_RANGE
                state[5] = index
                break
            previous = index
            min_index = min(min_index, index)
            max_index = max(max_index, index)
            indices[nnz] = column
            data[nnz] = value
            nnz += 1
            pos = after
        if status != OK:
            state[4] = token
            if status == NEED_VALUE:
                nnz = row_nnz
                pos = line_start
            break
        labels[rows] = label
        row_line[rows] = line
        rows += 1
        indptr[rows] = nnz
        pos = _skip_line(buf, pos, end)
        line += 1
    state[0] = pos if status == OK or status == NEED_VALUE else state[0]
    state[1] = rows
    state[2] = nnz
    state[3] = line
    state[6] = min_index
    state[7] = max_index
    return status


@kernel(exact=True)
def last_newline(buf, start, end):
    """Position after the last newline of ``buf[start:end]``, or ``start`` when there is none."""
    for i in range(end - 1, start - 1, -1):
        if buf[i] == _LF:
            return i + 1
    return start


@kernel(exact=True)
def token_end(buf, pos, end):
    """End of the token (a field, or a number of one) that starts at ``pos``."""
    while pos < end and not _ends_token(buf, pos, end) and buf[pos] != _COLON:
        pos += 1
    return pos
