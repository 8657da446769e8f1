"""A larger validation set for `edgelm calibrate` than tests/hybrid/data/calibration_stories.jsonl:
next-word cloze items cut from the repository's short stories (the text itself is the reference,
so no model decides what is correct), followed by the items of the given extra sets.

    make_cloze_set.py OUT.jsonl STORIES.txt [STORIES.txt ...] [--extra SET.jsonl ...] [--min-words N]

Each paragraph gives one item per word after the first N (default 3): the prompt is the paragraph
up to that word, the reference is the word's first run of letters and digits ("Sue's" -> "Sue",
matched the way hybrid::answer_matches does). Words that are only punctuation are skipped.
"""
import argparse
import json
import re


def cloze_items(text, min_words):
    for paragraph in re.split(r"\n\s*\n", text):
        words = paragraph.split()
        for i in range(min_words, len(words)):
            reference = re.search(r"[A-Za-z0-9]+", words[i])
            if reference:
                yield {"prompt": " ".join(words[:i]), "reference": reference.group()}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("stories", nargs="+")
    parser.add_argument("--extra", action="append", default=[])
    parser.add_argument("--min-words", type=int, default=3)
    args = parser.parse_args()
    items = []
    for path in args.stories:
        with open(path, encoding="utf-8") as f:
            items.extend(cloze_items(f.read(), args.min_words))
    for path in args.extra:
        with open(path, encoding="utf-8") as f:
            items.extend(json.loads(line) for line in f if line.strip())
    with open(args.out, "w", encoding="utf-8") as f:
        for item in items:
            f.write(json.dumps(item) + "\n")
    print(len(items))


if __name__ == "__main__":
    main()
