#!/usr/bin/python3
"""Reference pre-tokenizer splits, with Python's `regex` module (Debian python3-regex).

Reads JSON {"pre": [names...], "texts": [...]} on stdin and writes JSON
{name: [[piece, ...] per text]} on stdout.

The regexes are the upstream tokenizer.json Split patterns (HF tokenizers), written here in
Python syntax; llama.cpp applies a model's list in order, each regex to every piece produced so
far, and within a piece every match and every gap between matches becomes a piece (HF's
"Isolated" split behaviour). As llama.cpp does, non-ASCII white space is presented to the regexes
as U+000B (so that a white-space character is never matched by a literal in a class).
"""
import json
import sys

import regex

GPT2 = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
LLAMA3 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
          r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
         r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
DEEPSEEK_CJK = "[一-龥ࠀ-一가-퟿]+"
DEEPSEEK_LLM = [
    "[\r\n]",
    # Cased letters; the escapes are characters NFC would otherwise replace.
    r"\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-\u1f7dᾀ-ᾴᾶ-ᾼ\u1fbeῂ-ῄῆ-ῌῐ-\u1fd3ῖ-\u1fdbῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤ\u2126ℨ\u212a-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+",
    r"\s?[!-/:-~！-／：-～‘-‟　-。]+",
    r"\s+\Z",  # ECMAScript/PCRE2-DOLLAR_ENDONLY "$": the very end only
    DEEPSEEK_CJK,
    r"\p{N}+",
]
DEEPSEEK_V3 = [
    r"\p{N}{1,3}",
    "[一-龥぀-ゟ゠-ヿ]+",
    r"[!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+"
    r"| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
]
DEEPSEEK_CODER = ["[\r\n]", r"\s?\p{L}+", r"\s?\p{P}+", DEEPSEEK_CJK, r"\p{N}"]
BLOOM = r" ?[^(\s|.,!?…。，、।۔،)]+"
# Tekken as llama.cpp adapts it (its std::regex lacks \p{Lu}/\p{M}: letters that are not a-z /
# A-Z stand in for the case classes, and marks are not letters). Upstream tokenizer.json:
# [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|...
TEKKEN = (r"[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+"
          r"|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*"
          r"|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+")
STARCODER = [r"\p{N}", GPT2]

PATTERNS = {
    "default": [r"[\p{P}\$\+<=>\^~\|]+", GPT2, r"\p{N}+", "[0-9][0-9][0-9]"],
    "llama-bpe": [LLAMA3],
    "dbrx": [LLAMA3],
    "smaug-bpe": [LLAMA3],
    "chatglm-bpe": [LLAMA3],
    "deepseek-llm": DEEPSEEK_LLM,
    "deepseek-v3": DEEPSEEK_V3,
    "deepseek-coder": DEEPSEEK_CODER,
    "falcon": [r"[\p{P}\$\+<=>\^~\|`]+", GPT2, "[0-9][0-9][0-9]"],
    "starcoder": STARCODER,
    "refact": STARCODER,
    "command-r": STARCODER,
    "smollm": STARCODER,
    "codeshell": STARCODER,
    "exaone": STARCODER,
    "minerva-7b": STARCODER,
    "gpt-2": [GPT2],
    "mpt": [GPT2],
    "olmo": [GPT2],
    "jais": [GPT2],
    "qwen2": [QWEN2],
    "stablelm2": [QWEN2],
    "poro-chat": [BLOOM],
    "bloom": [BLOOM],
    "gpt3-finnish": [BLOOM],
    "viking": [BLOOM, r"\p{N}"],
    "tekken": [TEKKEN],
    "chameleon": ["<sentinel:[0-9]+>", "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z", "([\t\n]|    |  )",
                  r"\p{N}", r"[\p{P}!-/:-@\[-`{-~]", GPT2],
}


def present(text):
    return "".join("\x0b" if ord(c) > 0x7F and regex.match(r"\s", c) else c for c in text)


def split(text, patterns):
    shown = present(text)
    pieces = [(0, len(text))]
    for pattern in patterns:
        compiled = regex.compile(pattern)
        out = []
        for start, end in pieces:
            last = start
            for m in compiled.finditer(shown[start:end]):
                if m.end() == m.start():
                    continue
                if m.start() + start > last:
                    out.append((last, m.start() + start))
                out.append((m.start() + start, m.end() + start))
                last = m.end() + start
            if last < end:
                out.append((last, end))
        pieces = out
    return [text[s:e] for s, e in pieces]


def main():
    request = json.load(sys.stdin)
    result = {name: [split(t, PATTERNS[name]) for t in request["texts"]] for name in request["pre"]}
    json.dump(result, sys.stdout, ensure_ascii=True)


if __name__ == "__main__":
    main()
