"""HTML pages of the audit's tables (claims, sensitivity, readings, explanations, manifest,
configuration, comparison): one page skeleton, one table builder, one small script that makes a
table filterable and sortable. Every page is self-contained (no network), so that it works
inside the report's frame and opened alone. Callers escape their cells (``esc``): a claim's or a
variant's text is data, never markup.

A document written once for both a Markdown file and an HTML page is a list of blocks
(:class:`Heading`, :class:`Para`, :class:`Table`) rendered by :func:`markdown` and :func:`html`:
the two cannot drift apart.
"""

from __future__ import annotations

import html as _html
from dataclasses import dataclass, field
from typing import Any, Callable

esc = _html.escape

STYLE = (
    "body{font-family:sans-serif;font-size:13px;margin:1em;color:#222}"
    "table{border-collapse:collapse;margin:0.5em 0}table.interactive{width:100%}"
    "td,th{border:1px solid #ccc;padding:3px 7px;vertical-align:top;text-align:left}"
    "table.interactive td{max-width:26em}"
    "thead th{background:#f3f3f3;position:sticky;top:0}"
    "th.sortable{cursor:pointer}th.sortable:after{content:' \\2195';color:#999}"
    "tr.group th{background:#e8eef6;font-size:14px}"
    ".controls{position:sticky;top:0;background:#fff;padding:4px 0;z-index:2}"
    ".controls input,.controls select{font-size:13px;margin-right:0.6em}"
    ".count{color:#444;margin:0.3em 0}.num{font-family:monospace;white-space:nowrap}"
    ".unit{color:#666;font-size:11px}.tech{color:#666;font-size:11px;font-family:monospace}"
    "pre{font-size:12px}.cell{text-align:center;font-family:monospace;min-width:4em}"
    ".cell b{font-size:15px}.differs{outline:2.5px solid #000;outline-offset:-3px}"
    ".legend span{display:inline-block;padding:1px 6px;margin-right:6px;border-radius:3px}"
)

# Filter and sort, for every <table class="interactive">: a text box (every cell's text), one
# menu per column whose header has data-menu, a click on a header with class sortable sorts by
# it (numbers by data-sort, else text; a second click reverses), and a line that counts what is
# shown per value of the column with data-count. Rows of class group head a group; they hide
# when the table is sorted or when none of their rows is shown.
SCRIPT = """
document.querySelectorAll('table.interactive').forEach(function (t) {
  var body = t.tBodies[0], heads = Array.from(t.tHead.rows[0].cells);
  var rows = Array.from(body.rows).filter(function (r) { return !r.classList.contains('group'); });
  var groups = Array.from(body.rows).filter(function (r) { return r.classList.contains('group'); });
  var original = Array.from(body.rows), box = document.createElement('div');
  box.className = 'controls';
  var text = document.createElement('input');
  text.type = 'search'; text.placeholder = 'filter: any text'; text.setAttribute('aria-label', 'filter');
  box.appendChild(text);
  var menus = [];
  heads.forEach(function (h, i) {
    if (!h.dataset.menu) return;
    var m = document.createElement('select'), seen = {};
    m.setAttribute('aria-label', h.dataset.menu); m.add(new Option('every ' + h.dataset.menu, ''));
    rows.forEach(function (r) { var v = r.cells[i].dataset.value || r.cells[i].innerText.trim();
      if (!seen[v]) { seen[v] = 1; m.add(new Option(v, v)); } });
    box.appendChild(m); menus.push([m, i]);
  });
  var count = document.createElement('p'); count.className = 'count';
  var countCol = heads.findIndex(function (h) { return h.dataset.count; });
  t.parentNode.insertBefore(box, t); t.parentNode.insertBefore(count, t);
  var sorted = false;
  function update() {
    var q = text.value.toLowerCase(), shown = 0, tally = {};
    rows.forEach(function (r) {
      var ok = !q || r.innerText.toLowerCase().indexOf(q) >= 0;
      menus.forEach(function (mi) { var c = r.cells[mi[1]];
        if (mi[0].value && (c.dataset.value || c.innerText.trim()) !== mi[0].value) ok = false; });
      r.hidden = !ok;
      if (ok) { shown++; if (countCol >= 0) { var c = r.cells[countCol];
        var v = c.dataset.value || c.innerText.trim(); tally[v] = (tally[v] || 0) + 1; } }
    });
    groups.forEach(function (g) { var n = g.nextElementSibling, any = false;
      while (n && !n.classList.contains('group')) { if (!n.hidden) any = true; n = n.nextElementSibling; }
      g.hidden = sorted || !any; });
    count.textContent = 'showing ' + shown + ' of ' + rows.length + (countCol >= 0 ? ': ' +
      Object.keys(tally).map(function (k) { return tally[k] + ' ' + k; }).join(', ') : '');
  }
  heads.forEach(function (h, i) {
    if (!h.classList.contains('sortable')) return;
    h.addEventListener('click', function () {
      var dir = h.dataset.dir === 'asc' ? -1 : 1;
      heads.forEach(function (o) { delete o.dataset.dir; }); h.dataset.dir = dir > 0 ? 'asc' : 'desc';
      rows.sort(function (a, b) {
        var x = a.cells[i].dataset.sort, y = b.cells[i].dataset.sort;
        if (x !== undefined && y !== undefined && x !== '' && y !== '') return dir * (parseFloat(x) - parseFloat(y));
        return dir * a.cells[i].innerText.localeCompare(b.cells[i].innerText);
      });
      sorted = true; rows.forEach(function (r) { body.appendChild(r); }); update();
    });
  });
  t.addEventListener('dblclick', function () { sorted = false;
    original.forEach(function (r) { body.appendChild(r); }); update(); });
  text.addEventListener('input', update);
  menus.forEach(function (mi) { mi[0].addEventListener('change', update); });
  update();
});
"""


def breakable(name: str) -> str:
    """An identifier (a claim's, a variant's) escaped, with break points after its underscores
    and hyphens, so that a narrow column wraps it."""
    return esc(name).replace("_", "_<wbr>").replace("-", "-<wbr>")


def page(title: str, body: str, anchor: str = "", interactive: bool = False) -> str:
    """A self-contained HTML page: the title as heading, then ``body`` (already HTML)."""
    script = f"<script>{SCRIPT}</script>" if interactive else ""
    anchor_attr = f" id='{esc(anchor)}'" if anchor else ""
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(title)}</title>"
            f"<style>{STYLE}</style></head><body><h1{anchor_attr}>{esc(title)}</h1>{body}"
            f"{script}</body></html>\n")


def table(head, rows, interactive: bool = False, cls: str = "") -> str:
    """An HTML table. ``head``: header cells, each a string (escaped here) or a dict with
    ``text`` and optional ``sortable``, ``menu`` (a filter menu named so), ``count`` (the
    count line tallies this column), ``title``; ``rows``: lists of cells already HTML, each a
    string or a dict with ``html`` and optional ``sort`` (a number), ``value`` (what a menu
    matches), ``title``, ``cls``, ``style``; a row that is a dict ``{"group": text, "span": n}``
    heads a group."""
    classes = " ".join(c for c in ("interactive" if interactive else "", cls) if c)
    out = [f"<table class='{classes}'>" if classes else "<table>", "<thead><tr>"]
    for h in head:
        h = h if isinstance(h, dict) else {"text": h}
        attrs = ""
        if h.get("sortable"):
            attrs += " class='sortable'"
        if h.get("menu"):
            attrs += f" data-menu='{esc(h['menu'])}'"
        if h.get("count"):
            attrs += " data-count='1'"
        if h.get("title"):
            attrs += f" title='{esc(h['title'])}'"
        out.append(f"<th{attrs}>{h.get('html', esc(str(h['text'])))}</th>")
    out.append("</tr></thead><tbody>")
    for row in rows:
        if isinstance(row, dict):
            out.append(f"<tr class='group'><th colspan='{row['span']}'>{esc(row['group'])}</th></tr>")
            continue
        out.append("<tr>")
        for c in row:
            c = c if isinstance(c, dict) else {"html": c}
            attrs = ""
            for key, attr in (("sort", "data-sort"), ("value", "data-value"), ("title", "title"),
                              ("cls", "class"), ("style", "style")):
                if c.get(key) is not None and c.get(key) != "":
                    attrs += f" {attr}='{esc(str(c[key]))}'"
            out.append(f"<td{attrs}>{c['html']}</td>")
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


# ------------------------------------------------------------------ one document, two formats
@dataclass(frozen=True)
class Heading:
    text: str


@dataclass(frozen=True)
class Para:
    text: str  # plain text (escaped in HTML)
    strong: bool = False  # a warning: bold (and red in HTML)


@dataclass(frozen=True)
class Table:
    frame: Any  # a pandas DataFrame
    columns: list = field(default_factory=list)
    empty: str = ""  # said instead of an empty table ("" shows the empty table)


def _text(v, number: Callable) -> str:
    if isinstance(v, float):
        return number(v)
    return "" if v is None else str(v)


def markdown(title: str, blocks, number: Callable = str) -> str:
    """The blocks as Markdown; ``number`` formats floats."""
    lines = [f"# {title}", ""]
    for b in blocks:
        if isinstance(b, Heading):
            lines += [f"## {b.text}", ""]
        elif isinstance(b, Para):
            lines += [f"**{b.text}**" if b.strong else b.text, ""]
        elif isinstance(b, Table):
            if not len(b.frame) and b.empty:
                lines += [b.empty, ""]
                continue
            cell = (lambda v: _text(v, number).replace("|", "\\|").replace("\n", " "))
            lines += ["| " + " | ".join(b.columns) + " |", "|" + "---|" * len(b.columns)]
            lines += ["| " + " | ".join(cell(r[c]) for c in b.columns) + " |"
                      for r in b.frame.to_dict("records")]
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def html(title: str, blocks, number: Callable = str) -> str:
    """The blocks as a self-contained HTML page; ``number`` formats floats."""
    parts = []
    for b in blocks:
        if isinstance(b, Heading):
            parts.append(f"<h2>{esc(b.text)}</h2>")
        elif isinstance(b, Para):
            parts.append(f"<p style='color:#b00'><b>{esc(b.text)}</b></p>" if b.strong
                         else f"<p>{esc(b.text)}</p>")
        elif isinstance(b, Table):
            if not len(b.frame) and b.empty:
                parts.append(f"<p>{esc(b.empty)}</p>")
                continue
            rows = [[esc(_text(r[c], number)) for c in b.columns]
                    for r in b.frame.to_dict("records")]
            parts.append(table(b.columns, rows))
    return page(title, "".join(parts))
