"""A page's result to take away: one self-contained HTML file (interactive figures, tables, the model card, the
parameters, the references, the date and the command to reproduce), with a PNG of each figure and a CSV of each
table, zipped. Built with plotly's own HTML and image export (kaleido, which drives a local Chromium)."""

from __future__ import annotations

import csv
import html
import io
import json
import time
import zipfile
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import plotly.graph_objects as go

from sia_core.references import REFERENCES

_STYLE = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
          "table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.25em .6em;"
          "text-align:left}th{background:#f4f4f4}code,pre{background:#f6f6f6;padding:.2em .4em}"
          "pre{white-space:pre-wrap}.takeaway{font-size:1.1em;border-left:4px solid #c33;padding-left:.8em}")


EXPORT_TEMPLATE = "plotly_white"


def exportable(figure: go.Figure) -> go.Figure:
    """A copy of a page's figure that keeps its look outside the app. Streamlit makes its own "streamlit" template
    the default, whose colours only its web page supplies: exported as is, every trace turns black. The copy takes
    plotly's own white template (a colour per trace) and room for its axis labels and titles."""
    copy = go.Figure(figure)
    # the app's template holds stand-in colours (#000001, #000002, ...) that only Streamlit's page resolves
    copy.update_layout(template=EXPORT_TEMPLATE)
    copy.update_xaxes(automargin=True, title_standoff=12)
    copy.update_yaxes(automargin=True, title_standoff=12)
    margin = copy.layout.margin
    copy.update_layout(margin=dict(l=max(margin.l or 0, 80), r=max(margin.r or 0, 30), t=max(margin.t or 0, 60),
                                   b=max(margin.b or 0, 70)))
    return copy


@dataclass(frozen=True)
class PageReport:
    title: str
    takeaway: str = ""
    figures: Sequence[tuple[str, go.Figure]] = ()
    tables: Sequence[tuple[str, Sequence[Mapping[str, Any]]]] = ()
    card: Mapping[str, Any] = field(default_factory=dict)
    parameters: Mapping[str, Any] = field(default_factory=dict)
    references: Sequence[str] = ()  # keys of sia_core.references.REFERENCES
    command: str = ""

    def exported_figures(self) -> list[tuple[str, go.Figure]]:
        """The figures as they leave the app: `exportable` copies."""
        return [(caption, exportable(figure)) for caption, figure in self.figures]

    def to_html(self, created: str | None = None) -> str:
        created = created or time.strftime("%Y-%m-%d %H:%M %Z")
        parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(self.title)}</title>"
                 f"<style>{_STYLE}</style></head><body>", f"<h1>{html.escape(self.title)}</h1>",
                 f"<p>Made by SIA Explorer on {html.escape(created)}.</p>"]
        if self.takeaway:
            parts.append(f"<p class='takeaway'>{html.escape(self.takeaway)}</p>")
        for number, (caption, figure) in enumerate(self.exported_figures()):
            # plotly.js once, inline, so the file works offline and alone
            parts.append(f"<h2>{html.escape(caption)}</h2>" + figure.to_html(
                full_html=False, include_plotlyjs="inline" if number == 0 else False))
        for caption, rows in self.tables:
            parts.append(f"<h2>{html.escape(caption)}</h2>" + _html_table(rows))
        if self.parameters:
            parts.append("<h2>Parameters</h2>" + _html_table([{"parameter": k, "value": v}
                                                              for k, v in self.parameters.items()]))
        if self.command:
            parts.append(f"<h2>Reproduce</h2><pre>{html.escape(self.command)}</pre>")
        if self.card:
            parts.append("<h2>Model card</h2><pre>" + html.escape(json.dumps(card_for_report(self.card), indent=2,
                                                                              default=str)) + "</pre>")
        if self.references:
            items = "".join(f"<li>{html.escape(_plain(REFERENCES[key]))} <a href='{REFERENCES[key].url}'>"
                            f"arXiv:{REFERENCES[key].arxiv}</a></li>" for key in self.references)
            parts.append(f"<h2>References</h2><ul>{items}</ul>")
        return "\n".join(parts) + "</body></html>"

    def to_zip(self, created: str | None = None, *, with_png: bool = True) -> bytes:
        """report.html, a CSV per table and (when a Chromium is at hand) a PNG per figure."""
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("report.html", self.to_html(created))
            for number, (caption, rows) in enumerate(self.tables, start=1):
                archive.writestr(f"table-{number}-{_slug(caption)}.csv", _csv(rows))
            if with_png:
                for number, (caption, figure) in enumerate(self.exported_figures(), start=1):
                    try:
                        png = figure.to_image(format="png", scale=2)
                    except Exception as error:  # no Chromium for kaleido: the HTML still has every figure
                        archive.writestr("figures-not-exported.txt", f"PNG export needs a Chromium: {error}\n")
                        break
                    archive.writestr(f"figure-{number}-{_slug(caption)}.png", png)
        return buffer.getvalue()


def _plain(reference) -> str:
    return f"{reference.authors}. {reference.title}. {reference.venue}, {reference.year}."


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")[:40] or "item"


def _html_table(rows: Sequence[Mapping[str, Any]]) -> str:
    if not rows:
        return "<p>(empty)</p>"
    columns = list(dict.fromkeys(key for row in rows for key in row))
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(row.get(c, '')))}</td>" for c in columns) + "</tr>"
                   for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _csv(rows: Sequence[Mapping[str, Any]]) -> str:
    columns = list(dict.fromkeys(key for row in rows for key in row))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def card_for_report(card: Mapping[str, Any]) -> dict:
    """A model card as a report shows it: commands as anyone can re-run them (no paths of the machine that trained
    it) and without the per-epoch history, which only the training log needs."""
    from sia_core.models.cards import portable_command

    shown = dict(card)
    if isinstance(card.get("training"), Mapping):
        training = {key: value for key, value in card["training"].items() if key != "history"}
        if isinstance(training.get("command"), str):
            training["command"] = portable_command(training["command"])
        shown["training"] = training
    if isinstance(card.get("evaluations"), (list, tuple)):
        shown["evaluations"] = [{**evaluation, **({"command": portable_command(evaluation["command"])}
                                                  if isinstance(evaluation.get("command"), str) else {})}
                                if isinstance(evaluation, Mapping) else evaluation
                                for evaluation in card["evaluations"]]
    return shown
