# Expected NFC/NFD/NFKC/NFKD forms from Python's unicodedata (the same
# Unicode version as ../unicode_tables.go) for strings that exercise
# recursive decomposition, canonical reordering, blocked and unblocked
# composition, Hangul and compatibility mappings, plus every code point of
# a few blocks. Run: python3 gen_normalization.py > normalization.json
import json, unicodedata
cases = ["Äpfel", "Cửa Việt", "ﬁ①²", "한국어 각", "e\u0301\u0323", "e\u0323\u0301", "a\u0308\u0301\u0327", "ḍ̇", "ǅ", "Å Ω K",
         "\u0344", "\u1e0b\u0323", "\u0071\u0307\u0323", "㎒ ㍿ ﷺ", "ｶﾞ", "\u2126\u212b", "ϓ ϔ", "\u0f73 \u0f75", "x\u0338=", "\u00c5\u0301"]
for lo, hi in ((0xC0, 0x250), (0x1E00, 0x1F00), (0x3040, 0x3100), (0xFB00, 0xFB50), (0x2460, 0x24FF)):
    cases.append("".join(chr(c) for c in range(lo, hi)))
out = {"unicode": unicodedata.unidata_version,
       "cases": [{"s": s, **{f: unicodedata.normalize(f, s) for f in ("NFC", "NFD", "NFKC", "NFKD")}} for s in cases]}
json.dump(out, open(1, "w", encoding="utf-8", closefd=False), ensure_ascii=False, indent=0)
