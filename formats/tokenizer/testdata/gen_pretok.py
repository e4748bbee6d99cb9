# Reference splits for the named pre-tokenizers, computed by running the
# ORIGINAL regular expressions (as the models' tokenizer.json files and
# llama.cpp's llama-vocab.cpp give them) with Python's `regex` module, one
# "Isolated" Split stage after another, over a corpus of tricky strings plus
# llama.cpp's 46 tokenizer test texts. The Go scanners must give the same
# words. Run: python3 gen_pretok.py ../../../../shared/reference/tokenizer/ggml-vocab-gpt-2.gguf.inp > pretok_splits.json
import json, sys, regex

CONTR_CI = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)"
GPT2 = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
GPT2_LLAMACPP = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"
LLAMA3 = CONTR_CI + r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
QWEN2 = CONTR_CI + r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
U = r"[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]"
W = r"[\p{Ll}\p{Lm}\p{Lo}\p{M}]"
UK = r"[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]"
WK = r"[\p{Ll}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]"

PIPELINES = {
    "default": [r"[\p{P}\$\+<=>\^~\|]+", GPT2_LLAMACPP, r"\p{N}+", r"[0-9][0-9][0-9]"],
    "llama3": [LLAMA3],
    "deepseek-llm": [r"[\r\n]",
        r"\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-\u1f7dᾀ-ᾴᾶ-ᾼ\u1fbeῂ-ῄῆ-ῌῐ-\u1fd3ῖ-\u1fdbῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤ\u2126ℨ\u212a-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+",
        r"\s?[!-/:-~！-／：-～‘-‟　-。]+", r"\s+$", r"[一-龥ࠀ-一가-퟿]+", r"\p{N}+"],
    "deepseek-coder": [r"[\r\n]", r"\s?\p{L}+", r"\s?\p{P}+", r"[一-龥ࠀ-一가-퟿]+", r"\p{N}"],
    "deepseek-v3": [r"\p{N}{1,3}", r"[一-龥぀-ゟ゠-ヿ]+",
        r"[!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"],
    "falcon": [r"[\p{P}\$\+<=>\^~\|`]+", GPT2_LLAMACPP, r"[0-9][0-9][0-9]"],
    "starcoder": [r"\p{N}", GPT2_LLAMACPP],
    "gpt-2": [GPT2],
    "qwen2": [QWEN2],
    "qwen35": [CONTR_CI + r"|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"],
    "ufakzeka": [r"[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"],
    "laguna": [r"[^\n]+|[\n]+", QWEN2],
    "minicpm5": [r"\p{N}{1,3}", CONTR_CI + r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}+| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"],
    "bloom": [r" ?[^(\s|.,!?…。，、।۔،)]+"],
    "viking": [r" ?[^(\s|.,!?…。，、।۔،)]+", r"\p{N}"],
    "tekken": [r"[^\r\n\p{L}\p{N}]?" + U + "*" + W + r"+|[^\r\n\p{L}\p{N}]?" + U + "+" + W + r"*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"],
    "gpt-4o": [r"[^\r\n\p{L}\p{N}]?" + U + "*" + W + "+" + CONTR_CI + r"?|[^\r\n\p{L}\p{N}]?" + U + "+" + W + "*" + CONTR_CI + r"?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"],
    "kimi-k2": [r"(?V1)[\p{Han}]+|[^\r\n\p{L}\p{N}]?" + UK + "*" + WK + "+" + CONTR_CI + r"?|[^\r\n\p{L}\p{N}]?" + UK + "+" + WK + "*" + CONTR_CI + r"?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"],
    "chameleon": [r"<sentinel:[0-9]+>", r"(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z", r"([\t\n]|    |  )", r"\p{N}", r"[\p{P}!-/:-@\[-`{-~]", GPT2_LLAMACPP],
    "superbpe": [r"\p{N}+", r"(?=(\d{3})+(?!\d))"],
    "bailingmoe": [r"'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+"],
    "seed-coder": [CONTR_CI + r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1}| ?[^\s\p{L}\p{N}\r\n]+|\s*[\r\n]+|\s+(?!\S)|\s+"],
}

def isolated(rx, s):
    out, last = [], 0
    for m in rx.finditer(s):
        a, b = m.span()
        if a > last:
            out.append(s[last:a])
        if b > a:
            out.append(s[a:b])
        last = max(last, b) if b > a else a
        if b == a:
            # zero-width: a cut at a
            pass
    if last < len(s):
        out.append(s[last:])
    return [p for p in out if p]

def split(pipeline, text):
    words = [text] if text else []
    for pat in pipeline:
        rx = regex.compile(pat)
        words = [w for word in words for w in isolated(rx, word)]
    return words

corpus = [
    "IT'S we'LL They'Re x'y 'll don't '''s ''", "汉字abc12345DEF 漢字テスト カタカナ ひらがな",
    "HelloWORLDFooBar camelCaseXMLParser ABCdef aBC", "e\u0301t\u00e9 cafe\u0301", "नमस्ते दुनिया", "مرحبا بالعالم",
    "1234567 12 123456 1234 12345678901", "$100,000.00 +-=<>^~|` €5", "a   ", "a\n\n  b\r\n", "  \t x", "\u3000x\u00a0y",
    "👍🏽 🤖🤖 ⚡", "Ⅻ ½ ² ①", "<sentinel:12>IMGIMGABCZ IMGIMGABCDEZ x    y  z\t", "foo/bar\n/ baz//\n\n",
    "(a|b).c,d!e?f…g。h，i、j", "\u0301abc \u0301 \u0301\u0301x", "ǅungla ǅ Ǆ", "x\n", "\n\n\n x", " \n", "a \n b",
    "   Hello", "Hello   ", "  ", "...", "a...b", "i'M I'm YOU'RE", "\r\r\n\n", "中文English混合123数字",
    "한국어 텍스트 123", "ゼロ１２３", "ⅠⅡⅢ x", "tab\there", "ﬁne ﬂow", "Ωmega ℌ", "test\u200bzero",
]
inp = open(sys.argv[1], encoding="utf-8").read()
sep = "\n__ggml_vocab_test__\n"
tests, pos = [], 0
while pos < len(inp):
    k = inp.find(sep, pos)
    if k < 0:
        tests.append(inp[pos:]); break
    tests.append(inp[pos:k]); pos = k + len(sep)
corpus += tests
out = {"regex_version": regex.__version__, "cases": []}
for name, pl in PIPELINES.items():
    for text in corpus:
        out["cases"].append({"pre": name, "text": text, "words": split(pl, text)})
json.dump(out, sys.stdout, ensure_ascii=False, indent=0)
