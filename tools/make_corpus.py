#!/usr/bin/env python3
"""Builds spikelm's bundled corpus under examples/data/ from Debian's bible-kjv package.

    sudo apt-get install bible-kjv          # the `bible` program and the KJV text (bible-kjv-text)
    python3 tools/make_corpus.py            # writes examples/data/{kjv.txt, kjv_sections_*.tsv}
    python3 tools/make_corpus.py --check    # regenerates in memory and compares, writes nothing

The King James Version (1611) is in the public domain. Only this script needs the package; the library, the
tests and the demos read the files it produced, which are committed.

kjv.txt: the whole Bible, book by book: the book's name on a line, then one verse per line (no chapter or
verse numbers), a blank line between books.

kjv_sections_{train,dev,test}.tsv: "verse<TAB>section" lines for a six-way classification by the section of
the canon a verse comes from:
  law (Genesis-Deuteronomy), history (Joshua-Esther), poetry (Job-Song of Solomon), prophets (Isaiah-Malachi),
  gospels (Matthew-John), epistles (Romans-Jude).
Acts and Revelation are left out (neither fits one of the six). Verses whose text occurs more than once in the
Bible are left out too, so no text is in two splits. Per section, the verses are ordered by the SHA-256 of
"kjv:<book abbreviation><chapter>:<verse>" and the first 700 go to train, the next 100 to dev and the next 100
to test: a fixed split that does not depend on the Python version or on random seeds.
"""

import argparse
import collections
import hashlib
import os
import re
import subprocess
import sys

BOOKS = [
    ("Genesis", "law"), ("Exodus", "law"), ("Leviticus", "law"), ("Numbers", "law"), ("Deuteronomy", "law"),
    ("Joshua", "history"), ("Judges", "history"), ("Ruth", "history"), ("1 Samuel", "history"),
    ("2 Samuel", "history"), ("1 Kings", "history"), ("2 Kings", "history"), ("1 Chronicles", "history"),
    ("2 Chronicles", "history"), ("Ezra", "history"), ("Nehemiah", "history"), ("Esther", "history"),
    ("Job", "poetry"), ("Psalms", "poetry"), ("Proverbs", "poetry"), ("Ecclesiastes", "poetry"),
    ("Song of Solomon", "poetry"),
    ("Isaiah", "prophets"), ("Jeremiah", "prophets"), ("Lamentations", "prophets"), ("Ezekiel", "prophets"),
    ("Daniel", "prophets"), ("Hosea", "prophets"), ("Joel", "prophets"), ("Amos", "prophets"),
    ("Obadiah", "prophets"), ("Jonah", "prophets"), ("Micah", "prophets"), ("Nahum", "prophets"),
    ("Habakkuk", "prophets"), ("Zephaniah", "prophets"), ("Haggai", "prophets"), ("Zechariah", "prophets"),
    ("Malachi", "prophets"),
    ("Matthew", "gospels"), ("Mark", "gospels"), ("Luke", "gospels"), ("John", "gospels"), ("Acts", None),
    ("Romans", "epistles"), ("1 Corinthians", "epistles"), ("2 Corinthians", "epistles"),
    ("Galatians", "epistles"), ("Ephesians", "epistles"), ("Philippians", "epistles"),
    ("Colossians", "epistles"), ("1 Thessalonians", "epistles"), ("2 Thessalonians", "epistles"),
    ("1 Timothy", "epistles"), ("2 Timothy", "epistles"), ("Titus", "epistles"), ("Philemon", "epistles"),
    ("Hebrews", "epistles"), ("James", "epistles"), ("1 Peter", "epistles"), ("2 Peter", "epistles"),
    ("1 John", "epistles"), ("2 John", "epistles"), ("3 John", "epistles"), ("Jude", "epistles"),
    ("Revelation", None),
]
SPLITS = (("train", 700), ("dev", 100), ("test", 100))
VERSE = re.compile(r"^([1-3]?[A-Za-z]+)(\d+):(\d+) (.*)$")


def read_verses():
    """[(abbreviation, chapter, verse, text)] of the whole Bible, in order, from `bible -f`."""
    out = subprocess.run(["bible", "-f", "-m", "8192", "Gen1:1-Rev22:21"], check=True, capture_output=True)
    verses = []
    for line in out.stdout.decode("ascii").splitlines():
        m = VERSE.match(line)
        if not m:
            raise SystemExit("unexpected line from `bible -f`: %r" % line)
        verses.append((m.group(1), int(m.group(2)), int(m.group(3)), m.group(4).strip()))
    return verses


def build():
    verses = read_verses()
    abbrs = list(dict.fromkeys(v[0] for v in verses))
    if len(abbrs) != len(BOOKS) or len(verses) != 31102:
        raise SystemExit("expected 66 books and 31102 verses, got %d and %d" % (len(abbrs), len(verses)))
    book_of = {a: i for i, a in enumerate(abbrs)}

    text, prev = [], None
    for abbr, _, _, verse in verses:
        if abbr != prev:
            if prev is not None:
                text.append("")
            text.append(BOOKS[book_of[abbr]][0])
            prev = abbr
        text.append(verse)
    kjv = "\n".join(text) + "\n"

    counts = collections.Counter(v[3] for v in verses)
    by_section = collections.defaultdict(list)
    for abbr, ch, vs, verse in verses:
        section = BOOKS[book_of[abbr]][1]
        if section is None or counts[verse] > 1:
            continue
        key = hashlib.sha256(("kjv:%s%d:%d" % (abbr, ch, vs)).encode()).hexdigest()
        by_section[section].append((key, verse))
    files = {"kjv.txt": kjv}
    for name, _ in SPLITS:
        files["kjv_sections_%s.tsv" % name] = []
    for section in sorted(by_section):
        ranked = sorted(by_section[section])
        start = 0
        for name, n in SPLITS:
            files["kjv_sections_%s.tsv" % name] += ["%s\t%s" % (v, section) for _, v in ranked[start:start + n]]
            start += n
    for name, _ in SPLITS:
        rows = files["kjv_sections_%s.tsv" % name]
        rows.sort(key=lambda r: hashlib.sha256(r.encode()).hexdigest())  # interleave the sections
        files["kjv_sections_%s.tsv" % name] = "\n".join(rows) + "\n"
    return files


def main(argv=None):
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(here, "..", "examples", "data"))
    ap.add_argument("--check", action="store_true", help="compare with the committed files, write nothing")
    args = ap.parse_args(argv)
    version = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "bible-kjv-text"], capture_output=True,
                             text=True).stdout or "unknown"
    files = build()
    bad = []
    for name, data in sorted(files.items()):
        blob = data.encode("utf-8")
        path = os.path.join(args.out, name)
        print("%-26s %8d bytes  sha256 %s" % (name, len(blob), hashlib.sha256(blob).hexdigest()))
        if args.check:
            if not os.path.exists(path) or open(path, "rb").read() != blob:
                bad.append(name)
        else:
            os.makedirs(args.out, exist_ok=True)
            with open(path, "wb") as f:
                f.write(blob)
    print("bible-kjv-text version %s" % version)
    if bad:
        print("differ from the committed files: %s" % ", ".join(bad))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
