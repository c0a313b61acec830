# ---- Elig record streams (standard library only) ---------------------------------------
# This text is copied verbatim into every generated evaluator module (after the runtime), and
# `elig evaluate` imports it: both read a batch the same way. A batch is JSON Lines (one record
# a line), a JSON array of records, or one JSON object (docs/io.md states the rules;
# docs/records.md defines the records):
#
# - lines end at "\n" only; a "\r" is JSON whitespace between tokens (so CRLF files work) and
#   an error inside a string, never a line break; a UTF-8 byte-order mark at the start is skipped;
# - a blank line (nothing but spaces, tabs and "\r") is not a record and gets no result; every
#   other line is a record and gets exactly one result, an error result if it is not a record;
# - the form is decided from the first value: complete on its first line, the input is JSON
#   Lines (and a first line that is a whole array, with nothing after it, is an array batch);
#   spread over several lines, it is one pretty-printed object or a JSON array, streamed
#   element by element; when those lines do not form one (an unfinished first line followed by
#   records), the input is read as JSON Lines after all: no batch depends on its first line;
# - every reader is linear in the input and holds one record (or one line) at a time.

import io as _io
import json as _json


class RecordStreamError(Exception):
    """The stream itself cannot be read as records (a JSON array broken after some elements)."""


_CHUNK = 1 << 16
_JSON_WS = " \t\r\n"
_DECODER = _json.JSONDecoder()


def open_records(path):
    """A text stream of the records at path ("-" or None: standard input), framed as Elig reads
    it: UTF-8 (undecodable bytes kept, so the record gets an error result), lines ending at LF
    only, no newline translation. Raises OSError when the file cannot be opened."""
    if path is None or path == "-":
        import sys

        raw = getattr(sys.stdin, "buffer", None)
        if raw is None:  # a replaced sys.stdin that is already text
            return sys.stdin
        return _io.TextIOWrapper(raw, encoding="utf-8", errors="surrogateescape", newline="\n")
    return open(path, "r", encoding="utf-8", errors="surrogateescape", newline="\n")


def _text_stream(stream):
    """A binary stream is read as UTF-8 with LF-only lines; a text stream as it is."""
    try:
        probe = stream.read(0)
    except (AttributeError, OSError, ValueError):
        return stream
    if isinstance(probe, (bytes, bytearray)):
        return _io.TextIOWrapper(stream, encoding="utf-8", errors="surrogateescape", newline="\n")
    return stream


def _blank(line):
    return not line.strip(_JSON_WS)


def iter_records(stream):
    """The records of a stream as JSON texts, one per record, in order (see the header)."""
    stream = _text_stream(stream)
    first = stream.readline()
    if first.startswith("\ufeff"):
        first = first[1:]
    while first and not first.strip(_JSON_WS):
        first = stream.readline()
    if not first:
        return
    lead = len(first) - len(first.lstrip(_JSON_WS))
    if first[lead] == "[":
        form = _array_line(first, lead + 1)
        if form == "ok":
            nxt = stream.readline()
            while nxt and _blank(nxt):
                nxt = stream.readline()
            if not nxt:  # the whole input is one array written on one line
                r = _Reader(None, first)
                r.eof = True
                r.pos = lead + 1
                yield from _elements(r, 0)
                return
            yield first  # JSON Lines whose first record is an array (an error result)
            yield from _lines(nxt, stream)
            return
        if form == "more":
            yield from _multiline_array(first, lead + 1, stream)
            return
    else:
        st = _scan_value(first, lead, eof=False)
        if st[0] == "more":
            yield from _multiline_value(first, lead, stream)
            return
    yield first  # a complete value on the first line, or not JSON at all: JSON Lines
    yield from _lines("", stream)


def _array_line(line, pos):
    """Whether line holds, after its '[', a whole JSON array ("ok"), the start of one ("more"),
    or neither ("bad"); element by element, so that a long line is never one parsed document."""
    r = _Reader(_io.StringIO(""), line)
    r.pos = pos
    try:
        for _ in _elements(r, 0):
            pass
    except RecordStreamError:
        return "more" if r.eof else "bad"
    return "ok"


def _lines(pending, stream):
    """JSON Lines: every non-blank line, starting with the text pending (a partial line)."""
    if pending:
        if not pending.endswith("\n"):
            pending += stream.readline()
        if not _blank(pending):
            yield pending
    for line in stream:
        if line[0] == "{" or line.strip(_JSON_WS):
            yield line


def _fallback(held, stream):
    """Read as JSON Lines after all: the text held so far, then the rest of the stream."""
    parts = held.split("\n")
    last = parts.pop()
    for line in parts:
        if not _blank(line):
            yield line + "\n"
    yield from _lines(last, stream)


def _scan_value(buf, pos, eof):
    """("ok", end) when a complete JSON value starts at buf[pos]; ("more",) when buf ends
    before the value does and more text could complete it; ("bad", pos, message) otherwise."""
    try:
        _, end = _DECODER.raw_decode(buf, pos)
    except RecursionError:
        return ("bad", pos, "nested too deeply")
    except ValueError as exc:
        at = getattr(exc, "pos", pos)
        msg = getattr(exc, "msg", str(exc))
        if "integer string conversion" in msg:  # an integer of thousands of digits is still JSON
            return _scan_value_slow(buf, pos, eof)
        if not eof and (at >= len(buf) - 32 or msg.startswith("Unterminated string")):
            return ("more",)
        return ("bad", at, msg)
    if end >= len(buf) and not eof:
        return ("more",)  # a number may go on in the next chunk
    return ("ok", end)


def _scan_value_slow(buf, pos, eof):
    try:
        _, end = _json.JSONDecoder(parse_int=len).raw_decode(buf, pos)
    except RecursionError:
        return ("bad", pos, "nested too deeply")
    except ValueError as exc:
        at = getattr(exc, "pos", pos)
        if not eof and at >= len(buf) - 32:
            return ("more",)
        return ("bad", at, getattr(exc, "msg", str(exc)))
    if end >= len(buf) and not eof:
        return ("more",)
    return ("ok", end)


class _Reader:
    """A growing window on a stream: buf[pos:] is unread text; more() reads at least as much
    again as is pending, so that retrying a long value stays linear."""

    def __init__(self, stream, text=""):
        self.stream = stream
        self.buf = text
        self.pos = 0
        self.eof = False
        self.consumed = 0  # characters dropped from the front of buf
        self.keep = False  # keep all text read (a form not yet decided may be read again)

    def more(self):
        if self.eof:
            return False
        want = max(_CHUNK, len(self.buf) - self.pos)
        got = self.stream.read(want)
        if not got:
            self.eof = True
            return False
        if self.pos > _CHUNK and not self.keep:
            self.consumed += self.pos
            self.buf = self.buf[self.pos:]
            self.pos = 0
        self.buf += got
        return True

    def skip_ws(self):
        """The next character that is not whitespace, or "" at the end of the input."""
        while True:
            buf = self.buf
            n = len(buf)
            p = self.pos
            while p < n and buf[p] in _JSON_WS:
                p += 1
            self.pos = p
            if p < n:
                return buf[p]
            if not self.more():
                return ""

    def value(self):
        """The text of the JSON value at pos, or ("bad", at, message)."""
        while True:
            st = _scan_value(self.buf, self.pos, self.eof)
            if st[0] == "ok":
                text = self.buf[self.pos:st[1]]
                self.pos = st[1]
                return text
            if st[0] == "bad":
                return st
            if not self.more():
                pass  # now at the end: the next scan decides

    def offset(self):
        return self.consumed + self.pos


def _elements(r, index):
    """Elements of a JSON array read from r (just after '[' or after element `index`)."""
    expect_value = index == 0
    while True:
        ch = r.skip_ws()
        if ch == "":
            raise RecordStreamError("the JSON array ends without ']' after element %d" % index)
        if ch == "]":
            r.pos += 1
            if r.skip_ws() != "":
                raise RecordStreamError("text after the end of the JSON array (after element %d)" % index)
            return
        if not expect_value:
            if ch != ",":
                raise RecordStreamError("the JSON array is not valid JSON after element %d: "
                                        "expected ',' or ']'" % index)
            r.pos += 1
            expect_value = True
            continue
        v = r.value()
        if type(v) is tuple:
            raise RecordStreamError("the JSON array is not valid JSON at element %d: %s" % (index + 1, v[2]))
        index += 1
        expect_value = False
        yield v


def _multiline_array(first, pos, stream):
    """A JSON array over several lines, streamed. Until the array's syntax has been seen to go
    on past the first line (a ',' after an element that ends beyond it, or the closing ']'),
    its elements are held: if the lines do not form an array (an unfinished first line, then
    records), the input is JSON Lines instead. At most the first line's elements and one more
    are held."""
    r = _Reader(stream, first)
    r.pos = pos
    r.keep = True
    line_end = len(first)
    beyond = False  # an element ending beyond the first line has been read
    held = []
    gen = _elements(r, 0)
    while True:
        try:
            v = next(gen)
        except StopIteration:
            break
        except RecordStreamError:
            if held is None:
                raise
            yield from _fallback(r.buf, stream)
            return
        if held is None:
            yield v
        elif beyond:  # the ',' before this element lies beyond the first line: an array
            r.keep = False
            yield from held
            held = None
            yield v
        else:
            held.append(v)
            beyond = r.offset() > line_end
    if held:
        yield from held


def _multiline_value(first, pos, stream):
    """One value written over several lines (a pretty-printed record), or else JSON Lines."""
    r = _Reader(stream, first)
    r.pos = pos
    r.keep = True
    v = r.value()
    if type(v) is not tuple and r.skip_ws() == "":
        yield v
        return
    yield from _fallback(r.buf, stream)
