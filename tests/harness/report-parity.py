#!/usr/bin/python3
"""report-parity.py REPORT.md REPORT.html — checks that the two renderings
of a report say the same: the same headings in the same order, the same
paragraphs, list items, table rows (cell by cell) and plots. Markup is set
aside (**bold**, `code`, <small>, tags); exits 1 at the first difference.
"""
import html
import re
import sys


def md_text(s):
    return s.replace("**", "").replace("`", "")


def html_text(s):
    s = s.replace("<small>", "(").replace("</small>", ")")
    return html.unescape(re.sub(r"<[^>]+>", "", s))


def from_md(md):
    out = []
    for line in md.splitlines():
        if not line.strip() or re.fullmatch(r"\|(---:?\|)+", line):
            continue
        m = re.match(r"(#{1,3}) (.*)", line)
        if m:
            out.append(("h", len(m.group(1)), md_text(m.group(2))))
        elif line.startswith("- "):
            out.append(("li", md_text(line[2:])))
        elif line.startswith("| "):
            out.append(("tr", [md_text(c) for c in line[2:-2].split(" | ")]))
        elif line.startswith("!["):
            out.append(("img", re.match(r"!\[([^]]*)\]", line).group(1)))
        else:
            out.append(("p", md_text(line)))
    return out


def from_html(doc):
    body = doc.split("<body>", 1)[1]
    out = []
    for m in re.finditer(r"<h([1-3])>(.*?)</h\1>|<li>(.*?)</li>|<tr>(.*?)</tr>|<p>(.*?)</p>|<img alt='([^']*)'",
                         body, re.S):
        if m.group(1):
            out.append(("h", int(m.group(1)), html_text(m.group(2))))
        elif m.group(3) is not None:
            out.append(("li", html_text(m.group(3))))
        elif m.group(4) is not None:
            out.append(("tr", [html_text(c) for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", m.group(4))]))
        elif m.group(5) is not None:
            out.append(("p", html_text(m.group(5))))
        else:
            out.append(("img", html.unescape(m.group(6))))
    return out


def main(argv):
    if len(argv) != 3:
        print("usage: report-parity.py REPORT.md REPORT.html", file=sys.stderr)
        return 2
    a = from_md(open(argv[1], encoding="utf-8").read())
    b = from_html(open(argv[2], encoding="utf-8").read())
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            print(f"report-parity: element {i} differs:\n  md:   {x}\n  html: {y}", file=sys.stderr)
            return 1
    if len(a) != len(b):
        print(f"report-parity: {len(a)} elements in Markdown, {len(b)} in HTML", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
