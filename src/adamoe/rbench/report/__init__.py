"""Reports of the reliability suite.

- `values`: how a cell shows a value (percent, number, delta, dash);
- `tables`: the side-by-side tables and lists built from the suite's result dict;
- `plots`: PNG plots on `matplotlib.figure.Figure` objects;
- `render`: the report's document, rendered by `adamoe.eval.report`, and the atomic writing of its files;
- `sweep`: the recipe sweep's table.
"""

from adamoe.rbench.report.render import REPORT_FILES, markdown_summary, render_report, write_report
from adamoe.rbench.report.tables import headline_table, routing_rows

__all__ = [
    "REPORT_FILES",
    "headline_table",
    "markdown_summary",
    "render_report",
    "routing_rows",
    "write_report",
]
