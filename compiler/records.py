# ---- Elig record streams (standard library only) ---------------------------------------
# This text is copied verbatim into every generated evaluator module (after the runtime), and
# `elig evaluate` imports it: both read a batch the same way. docs/records.md: a batch is JSON
# Lines (one record a line) or a JSON array of records; a single record is a JSON object.

import json as _json


class RecordStreamError(Exception):
    """The stream itself cannot be read as records (a JSON array that never ends, say)."""


def iter_records(stream):
    """The records of a stream as JSON texts: JSON Lines, a JSON array, or one JSON object."""
    head = ""
    while True:
        chunk = stream.read(1)
        if not chunk:
            return
        if not chunk.isspace():
            head = chunk
            break
    first_line = head + stream.readline()
    if head == "[":
        # a JSON array, unless its first line is complete JSON followed by more lines: then it is
        # JSON Lines whose first record happens to be an array (an error result, not the batch)
        if _parses(first_line):
            rest_first = stream.readline()
            while rest_first and not rest_first.strip():
                rest_first = stream.readline()
            if not rest_first:
                doc = _json.loads(first_line)
                for item in doc:
                    yield _json.dumps(item)
                return
            yield first_line
            yield rest_first
            for line in stream:
                if line.strip():
                    yield line
            return
        yield from _iter_array(_Chain(first_line[1:], stream))
        return
    if _parses(first_line):
        if first_line.strip():
            yield first_line
        for line in stream:
            if line.strip():
                yield line
        return
    # not one record per line: perhaps one pretty-printed object
    rest = stream.read()
    whole = first_line + rest
    try:
        doc = _json.loads(whole)
    except (ValueError, RecursionError):
        doc = None
    else:
        if isinstance(doc, list):
            for item in doc:
                yield _json.dumps(item)
            return
        yield whole
        return
    for line in whole.split("\n"):  # JSON Lines: records end at LF only (U+2028 may sit in a string)
        if line.strip():
            yield line


class _Chain:
    """A text already read, then the rest of a stream."""

    def __init__(self, head, stream):
        self.head = head
        self.stream = stream

    def read(self, n=-1):
        if self.head:
            out, self.head = self.head, ""
            return out
        return self.stream.read(n)


def _parses(text):
    try:
        _json.loads(text)
        return True
    except (ValueError, RecursionError):
        return False


def _iter_array(stream):
    """Elements of a JSON array read incrementally (the '[' is already consumed)."""
    dec = _json.JSONDecoder()
    buf = ""
    pos = 0
    eof = False
    index = 0
    expect_value = True
    while True:
        # skip whitespace and one comma
        while True:
            while pos < len(buf) and buf[pos].isspace():
                pos += 1
            if pos < len(buf) or eof:
                break
            more = stream.read(1 << 16)
            if not more:
                eof = True
            buf = buf[pos:] + more
            pos = 0
        if pos >= len(buf):
            raise RecordStreamError(f"the JSON array ends without ']' after element {index}")
        ch = buf[pos]
        if ch == "]":
            return
        if ch == "," and not expect_value:
            pos += 1
            expect_value = True
            continue
        while True:
            try:
                obj, end = dec.raw_decode(buf, pos)
                if end == len(buf) and not eof:
                    raise ValueError("maybe truncated")
                break
            except (ValueError, RecursionError):
                if eof:
                    raise RecordStreamError(f"the JSON array is not valid JSON at element {index + 1}")
                more = stream.read(1 << 16)
                if not more:
                    eof = True
                buf = buf[pos:] + more
                pos = 0
        yield buf[pos:end]
        index += 1
        pos = end
        expect_value = False
        if pos > (1 << 20):
            buf = buf[pos:]
            pos = 0
