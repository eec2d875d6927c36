"""Figures of the label source: the router against the static outage fallback."""
from __future__ import annotations

from ._base import go as _go

__all__ = ["plot_outage"]


def plot_outage(outage, *, title="k-NN router vs static fallback tier (% of messages)"):
    """Grouped bars of an outage comparison (rows: strategies, columns: rates as shares).

    Parameters
    ----------
    outage : pandas.DataFrame
        From :func:`workbench.traffic.shadow.outage_comparison`.
    """
    go = _go()
    fig = go.Figure([go.Bar(name=str(col).replace("_", " "), x=[str(i) for i in outage.index],
                            y=list(100 * outage[col])) for col in outage.columns])
    fig.update_layout(title=title, barmode="group", yaxis_title="%", height=380)
    return fig
