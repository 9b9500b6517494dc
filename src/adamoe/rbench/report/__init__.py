"""Reports of the reliability suite.

- `tables`: the metric tables (n, 95% CI, chance, paired MoE-vs-dense deltas), OOD and per-group tables;
- `details`: routing per stage against its matched reference, notes and examples;
- `plots`: PNG plots on `matplotlib.figure.Figure` objects;
- `render`: the report's document, rendered by `adamoe.eval.report`, and the atomic writing of its files;
"""

from adamoe.rbench.report.details import routing_table
from adamoe.rbench.report.render import REPORT_FILES, markdown_summary, write_report
from adamoe.rbench.report.tables import dimension_table

__all__ = [
    "REPORT_FILES",
    "dimension_table",
    "markdown_summary",
    "routing_table",
    "write_report",
]
