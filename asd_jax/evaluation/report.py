"""Results laid out like the report's Table 1: rows machine × metric, columns systems."""
from __future__ import annotations

import csv
import io

from asd_jax.evaluation import metrics
from asd_jax.io import atomic_write_text

COLUMN_TITLES = {'baseline_mse': 'Baseline MSE', 'baseline_mahalanobis': 'Baseline Mahalanobis'}


def _rows(results: dict[str, list[metrics.SectionResult]]):
  systems = list(results)
  sections = sorted({(r.machine, r.section) for rs in results.values() for r in rs})
  many = len({s for _, s in sections}) > 1
  header = ['Machine', 'Metric'] + [COLUMN_TITLES.get(s, s) for s in systems]
  rows = []
  for machine, section in sections:
    label = f'{machine} (section {section})' if many else machine
    for i, metric in enumerate(metrics.METRICS):
      values = []
      for system in systems:
        hit = [r.values.get(metric) for r in results[system]
               if (r.machine, r.section) == (machine, section)]
        values.append(hit[0] if hit and hit[0] is not None else None)
      rows.append([label if i == 0 else '', metric, *values])
  summaries = {s: metrics.summarise(rs) for s, rs in results.items()}
  for i, metric in enumerate((*metrics.METRICS, 'Official score')):
    rows.append(['All (hmean)' if i == 0 else '', metric, *[summaries[s][metric] for s in systems]])
  return header, rows


def _pct(value) -> str:
  return '-' if value is None else f'{100 * value:.2f}'


def markdown_table(results) -> str:
  header, rows = _rows(results)
  lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
  for row in rows:
    lines.append('| ' + ' | '.join(row[:2] + [_pct(v) for v in row[2:]]) + ' |')
  return '\n'.join(lines) + '\n'


def text_table(results) -> str:
  header, rows = _rows(results)
  cells = [header] + [row[:2] + [_pct(v) for v in row[2:]] for row in rows]
  widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
  return '\n'.join('  '.join(c.ljust(w) if i < 2 else c.rjust(w)
                             for i, (c, w) in enumerate(zip(r, widths))) for r in cells)


def write_results(results, md_path: str, csv_path: str, preamble: str = '') -> None:
  atomic_write_text(md_path, preamble + markdown_table(results))
  header, rows = _rows(results)
  buffer = io.StringIO()
  writer = csv.writer(buffer, lineterminator='\n')
  writer.writerow(header)
  writer.writerows(row[:2] + ['' if v is None else f'{100 * v:.4f}' for v in row[2:]]
                   for row in rows)
  atomic_write_text(csv_path, buffer.getvalue())
