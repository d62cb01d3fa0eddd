"""json_regex.py - the python program `make traces` records: builds JSON
documents, serializes and parses them, and runs regular expressions over
the text (deterministic; about a second)."""
import json
import random
import re

rng = random.Random(7)
words = ["alloc", "free", "slab", "arena", "page", "span", "heap", "cache", "block", "chunk"]
docs = []
for d in range(1500):
    doc = {
        "id": d,
        "name": " ".join(rng.choice(words) for _ in range(rng.randint(2, 8))),
        "tags": [rng.choice(words) + str(rng.randint(0, 99)) for _ in range(rng.randint(1, 20))],
        "values": [rng.random() * 1000 for _ in range(rng.randint(10, 200))],
        "children": [{"k": rng.choice(words), "v": rng.randint(0, 10 ** 6)} for _ in range(rng.randint(0, 40))],
    }
    docs.append(doc)
    if len(docs) > 64:
        docs.pop(rng.randrange(len(docs)))
    text = json.dumps(doc, indent=1 if d % 3 == 0 else None)
    back = json.loads(text)
    assert back["id"] == d
    nums = re.findall(r"-?\d+\.\d+|-?\d+", text)
    keys = re.findall(r'"(\w+)":', text)
    text2 = re.sub(r"(slab|arena)(\d+)", lambda m: m.group(1).upper() + m.group(2), text)
    words_seen = {w: len(re.findall(w, text2)) for w in words}
print(len(docs), len(nums), len(keys), sum(words_seen.values()))
