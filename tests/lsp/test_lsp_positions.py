"""lsp.positions: LSP positions <-> offsets in UTF-16 / UTF-8 / UTF-32, emoji, CJK, CRLF, clamping."""

import pytest

from lsp.positions import UTF8, UTF16, UTF32, LineIndex, normalize_encoding, units

TEXT = "a = '😀中文'\r\nb = 1\rc = '𝄞'\nend"


def test_units_per_encoding():
    s = "😀中a"
    assert units(s, UTF16) == 2 + 1 + 1
    assert units(s, UTF8) == 4 + 3 + 1
    assert units(s, UTF32) == 3


def test_lines_split_on_crlf_cr_lf_only():
    idx = LineIndex(TEXT + "\u2028x\x0cy")
    assert idx.line_count() == 4
    assert idx.line_text(0) == "a = '😀中文'"
    assert idx.line_text(1) == "b = 1"
    assert idx.line_text(2) == "c = '𝄞'"
    assert idx.line_text(3) == "end\u2028x\x0cy"


@pytest.mark.parametrize("enc,col_after_emoji,col_end", [(UTF16, 7, 10), (UTF8, 9, 16), (UTF32, 6, 9)])
def test_offsets_after_emoji_and_cjk(enc, col_after_emoji, col_end):
    idx = LineIndex(TEXT)
    off = TEXT.index("😀") + 1
    assert idx.offset(0, col_after_emoji, enc) == off
    assert idx.position(off, enc) == (0, col_after_emoji)
    assert idx.offset(0, col_end, enc) == TEXT.index("\r\n")
    assert idx.position(TEXT.index("\r\n"), enc) == (0, col_end)


def test_position_inside_a_surrogate_pair_or_utf8_sequence_does_not_split_the_character():
    idx = LineIndex(TEXT)
    emoji = TEXT.index("😀")
    assert idx.offset(0, 6, UTF16) == emoji  # 6 = the second half of the pair
    assert idx.offset(0, 7, UTF8) == emoji  # inside the 4-byte sequence
    assert idx.offset(0, 8, UTF8) == emoji


def test_crlf_and_cr_lines():
    idx = LineIndex(TEXT)
    assert idx.offset(1, 0) == TEXT.index("b = 1")
    assert idx.offset(2, 0) == TEXT.index("c = ")
    assert idx.offset(3, 3) == len(TEXT)
    # the character after 𝄞 (astral) on a line after a lone CR
    assert idx.offset(2, 7) == TEXT.index("'", TEXT.index("𝄞"))


def test_clamping_past_the_end():
    idx = LineIndex(TEXT)
    assert idx.offset(0, 10_000) == TEXT.index("\r\n")  # end of line, before its break
    assert idx.offset(99, 0) == len(TEXT)
    assert idx.offset(-1, 5) == 0
    assert idx.offset(1, -3) == TEXT.index("b = 1")
    assert idx.position(10**9) == (3, 3)


def test_roundtrip_every_offset():
    for enc in (UTF8, UTF16, UTF32):
        idx = LineIndex(TEXT)
        for off in range(len(TEXT) + 1):
            line, ch = idx.position(off, enc)
            back = idx.offset(line, ch, enc)
            # offsets inside a line break map to the end of that line
            assert back == off or TEXT[back:off] in ("\r", "\r\n", "\n")


def test_normalize_encoding():
    from lsprotocol.types import PositionEncodingKind

    assert normalize_encoding(PositionEncodingKind.Utf8) == UTF8
    assert normalize_encoding("utf-32") == UTF32
    assert normalize_encoding(None) == UTF16
    assert normalize_encoding("latin-1") == UTF16
