"""Explore a pool map live in JupyterLab: select an island, read its messages, send them to review.

:func:`explore_map` takes a map from :func:`workbench.plots.plot_map` and
returns a :class:`MapExplorer` widget (a plotly ``FigureWidget`` with
ipywidgets around it): lasso or box selection fills a table, a click shows
the point's nearest neighbours, dropdowns choose the colouring and filter by
category, tier, language, source and errors, a search box finds messages by
id or text, a button writes the selection to a review file
(:func:`workbench.analysis.review.write_review_file`, which the review queue
and ``workbench label --input`` read; never an empty selection, never over a
file without "overwrite"), and "relabel selection" records label edits
(:mod:`workbench.traffic.edits`, applied by ``workbench merge --edits``).

A box or lasso drawn with the mouse reaches the kernel as the outline plotly
draws (``layout.selections``, :mod:`workbench.plots.selection`): the plotly
widget forwards clicks and hovers but not its selection event. Where no widget can be shown (a
nightly run, see :mod:`workbench.report.notebook`) it returns the figure,
filtered as the widget would start.

The explorer reads everything from the figure (``customdata`` named by
``layout.meta.workbench.columns``): the map is the one source of its data.
"""
from __future__ import annotations

import html

import numpy as np

from .. import config as _config
from ..analysis.review import REVIEW_FIELDS, write_review_file
from ..errors import ConfigError, WorkbenchError, require
from ._base import go as _go
from .pool import legend_title, plot_map
from .selection import points_in_selections
from .table import static_file, table_html

__all__ = ["MapExplorer", "explore_map", "map_table"]

ALL = "(all)"
_FILTERS = ("category", "tier", "lang", "source")


def _plain(value):
    return html.unescape(str(value).replace("<br>", ""))


def map_table(fig):
    """The points of a pool map as a DataFrame indexed by row: what its customdata and meta hold, and x, y."""
    import pandas as pd

    meta = fig.layout.meta["workbench"] if fig.layout.meta else None
    if not meta or meta.get("kind") != "pool-map":
        raise ValueError("explore_map needs a map from workbench.plots.plot_map (layout.meta.workbench)")
    col = {c: i for i, c in enumerate(meta["columns"])}
    records = []
    for t, category in meta["traces"].items():
        trace = fig.data[int(t)]
        for x, y, cd in zip(trace.x, trace.y, trace.customdata):
            pred = meta["categories"][cd[col["predicted"]]] if cd[col["predicted"]] >= 0 else ""
            records.append({"row": int(cd[col["row"]]), "id": _plain(cd[col["id"]]), "text": _plain(cd[col["text"]]),
                            "category": category, "tier": meta["tiers"].get(category, ""),
                            "lang": _plain(cd[col["lang"]]), "source": _plain(cd[col["source"]]), "predicted": pred,
                            "predicted_tier": meta["tiers"].get(pred, "") if pred else "",
                            "error": meta["errors"][cd[col["error"]]] if cd[col["error"]] >= 0 else "",
                            "neighbors": list(cd[col["neighbors"]]), "similarities": list(cd[col["similarities"]]),
                            "x": float(x), "y": float(y), "trace": int(t), "customdata": list(cd)})
    return pd.DataFrame(records).set_index("row", drop=False).sort_index()


def _shown_path(path):
    """``path`` relative to the project root when it is inside it (how the review-file box reads), else as given."""
    from pathlib import Path

    try:
        return Path(path).resolve().relative_to(_config.PROJECT_ROOT.resolve()).as_posix()
    except ValueError:
        return str(path)


def _current_color(fig):
    """The colouring a map shows (its dropdown's active entry)."""
    menus = fig.layout.updatemenus
    if not menus or menus[0].active is None:
        return "category"
    return menus[0].buttons[menus[0].active].label.split(": ", 1)[-1]


def _mask(points, *, category=ALL, tier=ALL, lang=ALL, source=ALL, errors_only=False):
    keep = np.ones(len(points), bool)
    for field, value in (("category", category), ("tier", tier), ("lang", lang), ("source", source)):
        if value != ALL:
            keep &= (points[field] == value).to_numpy()
    if errors_only:
        keep &= ~points["error"].isin(["", "correct"]).to_numpy()
    return keep


def _padded(rows, width, fill):
    """Ragged lists as a rectangle (neighbour lists lose their masked entries)."""
    return [list(r) + [fill] * (width - len(r)) for r in rows]


def _static(fig, points, keep, color):
    """The map of the kept points only (neighbour agreement still counted over every point)."""
    color = color or _current_color(fig)
    if keep.all() and color == _current_color(fig):
        return fig
    sub = points[keep]
    label_of = points["category"].to_dict()
    width = max((len(n) for n in sub["neighbors"]), default=0)
    neighbors = dict(neighbors=np.array(_padded(sub["neighbors"], width, 0)),
                     similarities=np.array(_padded(sub["similarities"], width, -np.inf), float),
                     neighbor_labels=np.array(_padded([[label_of.get(j) for j in n] for n in sub["neighbors"]],
                                                      width, None), dtype=object)) if width else {}
    frame = sub[["id", "text", "category", "tier", "lang", "source", "predicted", "predicted_tier", "error"]]
    if (frame["predicted"] == "").all():
        frame = frame.drop(columns=["predicted", "predicted_tier", "error"])
    return plot_map(sub[["x", "y"]].to_numpy(), frame.reset_index(drop=True), color=color,
                    title=fig.layout.title.text, rows=sub["row"].to_numpy(), **neighbors)


class MapExplorer:
    """A live map: selection table, neighbour panel, colouring and filters, export for review.

    Parameters
    ----------
    fig : plotly Figure from :func:`workbench.plots.plot_map`
    color : str, optional
        The colouring shown first (default: the figure's).
    errors_only : bool
        Start with only the messages the router got wrong.
    review_file : path
        Where :meth:`write_review` writes by default.
    edits_file : path
        Where :meth:`relabel` appends label edits (``workbench merge --edits``).
    """

    def __init__(self, fig, *, color=None, errors_only=False, review_file=_config.REVIEW_FILE,
                 edits_file=_config.EDITS_FILE):
        self.fig = fig
        self.color = color
        self.errors_only = errors_only
        self.review_file = review_file
        self.edits_file = edits_file

    def _build(self):
        widgets = require("ipywidgets", purpose="the map explorer")
        require("anywidget", purpose="plotly's FigureWidget")
        go = _go()
        self.points = map_table(self.fig)
        meta = self.fig.layout.meta["workbench"]
        self._colors = meta["colors"]
        self._trace_category = {int(t): c for t, c in meta["traces"].items()}
        self._data_traces = sorted(self._trace_category)
        self._proxies = {t: (tr.legend, tr.name) for t, tr in enumerate(self.fig.data) if tr.legend == "legend2"}
        self._picked, self._selection, self._quiet = {}, np.array([], dtype=np.int64), False
        self.figure = go.FigureWidget(self.fig)
        self.figure.layout.dragmode = "lasso"
        self.figure.layout.updatemenus = []  # one colour control: the widget's dropdown (the figure's would disagree)
        for t in self._data_traces:
            trace = self.figure.data[t]
            trace.on_selection(self._on_selection)
            trace.on_deselect(lambda trace, points: self.select([]))
            trace.on_click(self._on_click)
        # what reaches the kernel of a mouse selection: the outline plotly draws (see plots.selection)
        self.figure.layout.on_change(self._on_outline, "selections")
        drop = lambda desc, opts, value: widgets.Dropdown(  # noqa: E731
            description=desc, options=opts, value=value, style={"description_width": "initial"},
            layout=widgets.Layout(width="auto", max_width="260px", margin="2px 12px 2px 0"))
        current = self.color or _current_color(self.fig)
        self.color_menu = drop("colour", list(self._colors), current if current in self._colors else "category")
        self.filters = {f: drop(f if f != "lang" else "language", [ALL] + sorted(set(self.points[f]) - {""}), ALL)
                        for f in _FILTERS}
        self.errors_box = widgets.Checkbox(description="errors only", value=self.errors_only, indent=False)
        self.search = widgets.Text(placeholder="find messages by id or text", continuous_update=False,
                                   layout=widgets.Layout(width="320px"))
        self.count = widgets.Label("nothing selected")
        self.path_box = widgets.Text(value=_shown_path(self.review_file), description="review file",
                                     layout=widgets.Layout(width="460px"))
        self.write_button = widgets.Button(description="write selection", icon="download",
                                           tooltip="JSONL for the review queue and workbench label")
        self.status = widgets.Label("")
        self.neighbours = widgets.HTML()
        self.table = widgets.HTML()
        for w in [self.color_menu, self.errors_box, *self.filters.values()]:
            w.observe(lambda change: self._refresh(), names="value")
        self.search.observe(lambda change: self.find(change["new"]), names="value")
        self.overwrite = widgets.Checkbox(description="overwrite", value=False, indent=False,
                                          layout=widgets.Layout(width="auto"))
        self.write_button.on_click(lambda button: self._report(self.write_review))
        self._categories = list(meta["categories"])
        self.label_menu = drop("new label", self._categories, self._categories[0])
        self.note = widgets.Text(placeholder="note (why)", layout=widgets.Layout(width="260px"))
        self.relabel_button = widgets.Button(description="relabel selection", icon="tag",
                                             tooltip="append an edit per selected message to the edits file")
        self.relabel_button.on_click(lambda button: self._report(
            lambda: self.relabel(self.label_menu.value, note=self.note.value)))
        style = widgets.HTML(f"<style>{static_file('workbench.css')}</style>")
        wrap = widgets.Layout(flex_flow="row wrap", align_items="center")
        self.widget = widgets.VBox([
            style, widgets.HBox([self.color_menu, *self.filters.values(), self.errors_box], layout=wrap),
            widgets.HBox([self.search, self.count], layout=wrap), self.figure, self.table, self.neighbours,
            widgets.HBox([self.path_box, self.overwrite, self.write_button], layout=wrap),
            widgets.HBox([self.label_menu, self.note, self.relabel_button], layout=wrap), self.status])
        self.widget.add_class("wb-explorer")
        self._refresh()
        return self.widget

    # -- what is shown -------------------------------------------------------------------------

    def _colour_of(self, field, rows):
        key, of = self._colors[field]["key"], self._colors[field]["of"]
        values = self.points.loc[rows, field].astype(str)
        return [key.get(of.get(v, v), "#c7c7c7") for v in values]

    def _refresh(self):
        field = self.color_menu.value
        keep = _mask(self.points, errors_only=self.errors_box.value,
                     **{f: w.value for f, w in self.filters.items()})
        shown = self.points[keep]
        self._shown = {t: shown.index[shown["trace"] == t].to_numpy() for t in self._data_traces}
        with self.figure.batch_update():
            for t in self._data_traces:
                rows, trace = self._shown[t], self.figure.data[t]
                part = self.points.loc[rows]
                trace.update(x=part["x"].to_numpy(), y=part["y"].to_numpy(), customdata=list(part["customdata"]),
                             selectedpoints=None)
                colour = (self._colour_of(field, rows) if field != "category"
                          else self._colors["category"]["key"].get(self._trace_category[t], "#c7c7c7"))
                trace.marker.update(color=colour, colorscale=None, cmin=None, cmax=None)
            names = set(self._colors[field]["key"]) if field != "category" else set()
            for t, trace in enumerate(self.figure.data):
                if t in self._proxies:
                    trace.showlegend = field != "category" and trace.name in {html.escape(n) for n in names}
            self.figure.layout.legend2.update(visible=field != "category", title_text=f"colour: {field}")
            self.figure.layout.legend.title.text = legend_title(field)
        self._picked = {}
        self._clear_outline()
        self._show(np.array([], dtype=np.int64))

    def _clear_outline(self):
        """Remove plotly's selection outline (a selection from Python, a search or a filter replaces it)."""
        if self._outlines():
            self._quiet = True
            try:
                self.figure.layout.selections = ()
            finally:
                self._quiet = False

    def _show(self, rows):
        self._selection = np.asarray(rows, dtype=np.int64)
        n = len(self._selection)
        self.count.value = f"{n} selected" if n else "nothing selected"
        self.table.value = table_html(self.selection, title="Selection") if n else ""

    # -- events ------------------------------------------------------------------------------------

    def _on_selection(self, trace, points, selector=None):
        t = points.trace_index
        self._picked[t] = self._shown[t][np.asarray(points.point_inds, dtype=np.int64)]
        if t == self._data_traces[-1]:  # plotly calls every trace in order: the last one closes the event
            self._show(np.concatenate([self._picked.get(k, []) for k in self._data_traces]).astype(np.int64))

    def _outlines(self):
        # the layout's raw dict: plotly does not rebuild ``layout.selections`` objects after a relayout from the page
        return self.figure.layout.to_plotly_json().get("selections") or []

    def _on_outline(self, layout, selections):
        if self._quiet:
            return
        selections = self._outlines()
        rows = []
        for t in self._data_traces:
            part = self.points.loc[self._shown[t]]
            rows.append(self._shown[t][points_in_selections(part["x"], part["y"], selections)])
        self._show(np.concatenate(rows).astype(np.int64) if rows else [])

    def _report(self, action):
        """Run a button's action; a refusal goes to the status line, not a traceback in the log."""
        try:
            action()
        except WorkbenchError as exc:
            self.status.value = f"refused: {exc}"

    def _on_click(self, trace, points, state=None):
        if points.point_inds:
            self.show_neighbours(int(self._shown[points.trace_index][points.point_inds[0]]))

    # -- the public face ---------------------------------------------------------------------------

    @property
    def selection(self):
        """The selected messages as a DataFrame (review-file columns: id, text, category, tier, ...)."""
        return self.points.loc[self._selection, list(REVIEW_FIELDS)].reset_index(drop=True)

    @selection.setter
    def selection(self, ids):
        self.select(ids)

    def select(self, ids):
        """Select the messages with these ids (those the filters hide stay unselected); returns how many."""
        wanted = set(map(str, ids))
        rows = {t: np.flatnonzero(self.points.loc[self._shown[t], "id"].isin(wanted).to_numpy())
                for t in self._data_traces}
        self._clear_outline()
        with self.figure.batch_update():
            for t, inds in rows.items():
                self.figure.data[t].selectedpoints = inds.tolist() if wanted else None
        self._show(np.concatenate([self._shown[t][inds] for t, inds in rows.items()]).astype(np.int64))
        return len(self._selection)

    def find(self, query):
        """Select the messages whose id is ``query``, or else whose id or text contains it (case-insensitive)."""
        q = str(query).strip().casefold()
        if not q:
            return self.select([])
        ids = self.points["id"].str.casefold()
        hit = ids == q
        if not hit.any():
            hit = ids.str.contains(q, regex=False) | self.points["text"].str.casefold().str.contains(q, regex=False)
        return self.select(self.points.loc[hit, "id"])

    def show_neighbours(self, row):
        """Fill the neighbour panel with the nearest neighbours of the message in row ``row``."""
        import pandas as pd

        p = self.points.loc[row]
        label = {r: c for r, c in self.points["category"].items()}
        records = [{"#": k + 1, "similarity": s, "id": self.points.at[j, "id"] if j in label else "(not on this map)",
                    "label": label.get(j, ""), "same label?": label.get(j) == p["category"],
                    "text": self.points.at[j, "text"] if j in label else ""}
                   for k, (j, s) in enumerate(zip(p["neighbors"], p["similarities"]))]
        head = (f"<p class='wb-neighbours-head'><b>Nearest neighbours of {html.escape(p['id'])}</b> "
                f"({html.escape(p['category'])}): {html.escape(p['text'])}</p>")
        self.neighbours.value = head + table_html(pd.DataFrame(records), index=False, max_height="16em")

    def write_review(self, path=None, *, overwrite=None):
        """Write the selection to a review file (JSONL); returns its path.

        Without ``path``: the file in the widget's box (relative to the
        project root, as the notebooks read data paths), else ``review_file``.
        An empty selection is refused, and so is an existing file unless
        ``overwrite`` (default: the widget's "overwrite" box) says so.
        """
        from pathlib import Path

        if path is None:
            box = self.path_box.value.strip()
            path = _config.PROJECT_ROOT / box if box and not Path(box).is_absolute() else (box or self.review_file)
        overwrite = self.overwrite.value if overwrite is None else overwrite
        if not len(self._selection):
            raise ConfigError("nothing is selected: select messages on the map first (nothing written)")
        if Path(path).exists() and not overwrite:
            raise ConfigError(f"{_shown_path(path)} exists: tick 'overwrite' to replace it (nothing written)")
        path = write_review_file(self.selection, path)
        self.status.value = f"wrote {len(self._selection)} message(s) to {path.name}"
        return path

    def relabel(self, new_label, *, note="", who=None):
        """Record that the selected messages should be labelled ``new_label``: one edit each in ``edits_file``.

        ``workbench merge --edits`` applies the file to a copy of the pool.
        Returns how many edits were recorded (messages already so labelled are skipped).
        """
        from ..traffic.edits import record_edits

        if not len(self._selection):
            raise ConfigError("nothing is selected: select the messages to relabel first")
        rows = self.points.loc[self._selection, ["id", "text", "category"]]
        n = record_edits(rows, new_label, self.edits_file, who=who, note=note,
                         categories=self._categories)
        self.status.value = f"recorded {n} edit(s) to {new_label} in {_shown_path(self.edits_file)}"
        return n

    def _repr_mimebundle_(self, **kwargs):
        widget = getattr(self, "widget", None) or self._build()
        return widget._repr_mimebundle_(**kwargs)


def explore_map(fig, *, live=True, color=None, errors_only=False, review_file=_config.REVIEW_FILE,
                edits_file=_config.EDITS_FILE):
    """A :class:`MapExplorer` of ``fig`` when ``live``, else the figure as the explorer would start.

    Parameters
    ----------
    fig : plotly Figure from :func:`workbench.plots.plot_map`
    live : bool
        Whether widgets can be shown (a notebook's ``ctx.live``); without
        them the static figure is returned, with ``errors_only`` and
        ``color`` applied.
    color : str, optional
    errors_only : bool
    review_file : path
    edits_file : path
    """
    if live:
        return MapExplorer(fig, color=color, errors_only=errors_only, review_file=review_file, edits_file=edits_file)
    points = map_table(fig)
    return _static(fig, points, _mask(points, errors_only=errors_only), color)
