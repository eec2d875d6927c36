"""Plotly figures, one ``plot_<thing>(data, *, title=...)`` per concern.

Every function returns a figure and never shows or saves it: the notebook
decides. Maps take precomputed 2-D coordinates, so one UMAP fit serves
every figure. User text is HTML-escaped before it reaches a hover label.
:func:`explore_map` wraps a map in a live JupyterLab widget (selection,
neighbours, filters, export for review); :func:`sortable_table` shows a
DataFrame as a sortable HTML table with every row reachable.
To add a plot: a function in the module of its topic, listed in that
module's ``__all__`` and re-exported here.
"""
from .decisions import (plot_abstain_curve, plot_baselines, plot_pool_size_curve, plot_review_queue, plot_robustness,
                        plot_savings)
from .evaluation import (plot_backends, plot_confusion, plot_group_accuracy, plot_per_category, plot_rates,
                         plot_sweep)
from .explorer import MapExplorer, explore_map
from .generalisation import (plot_confidence_coverage, plot_context_rules, plot_conversation_policies, plot_reliability,
                             plot_source_accuracy, plot_threshold_curve)
from .label_source import plot_outage
from .pool import hover_text, label_clusters, plot_counts, plot_length_histogram, plot_map, plot_set_comparison
from .table import SortableTable, sortable_table
from .traffic import plot_coverage, plot_live_confidence, plot_traffic_cost, plot_traffic_map, plot_traffic_mix

__all__ = ["plot_map", "plot_set_comparison", "plot_counts", "plot_length_histogram", "hover_text",
           "plot_confusion", "plot_per_category", "plot_rates", "plot_group_accuracy", "plot_sweep", "plot_backends",
           "plot_abstain_curve", "plot_savings", "plot_baselines", "plot_pool_size_curve", "plot_robustness",
           "plot_review_queue", "plot_outage", "plot_reliability", "plot_source_accuracy", "plot_conversation_policies",
           "plot_context_rules", "plot_threshold_curve", "plot_confidence_coverage", "explore_map", "MapExplorer", "sortable_table",
           "SortableTable", "label_clusters", "plot_traffic_mix", "plot_traffic_cost", "plot_live_confidence",
           "plot_coverage", "plot_traffic_map"]
