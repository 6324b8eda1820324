"""Results laid out like the report's Table 1 (rows machine × metric, columns systems), and one
system's result CSV in the official evaluator's layout (sections × its columns, then its means)."""
from __future__ import annotations

import numpy as np

from asd_jax.evaluation import metrics
from asd_jax.io import atomic_write_csv, atomic_write_text

COLUMN_TITLES = {'baseline_mse': 'Baseline MSE', 'baseline_mahalanobis': 'Baseline Mahalanobis',
                 'reference_logmel': 'Log-mel reference'}


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
  for i, metric in enumerate((*metrics.METRICS, metrics.OFFICIAL_SCORE)):
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
  atomic_write_csv(csv_path, [header] + [row[:2] + ['' if v is None else f'{100 * v:.4f}'
                                                   for v in row[2:]] for row in rows])


_KINDS_HEADER = ['', '', 'AUC', 'pAUC', 'precision', 'recall', 'F1 score']


def _means(results, label: str) -> list[list]:
  """The official evaluator's arithmetic / harmonic / source / target mean rows."""
  rows = metrics.domain_rows(results)
  half = len(results)
  means = [('arithmetic mean', lambda v: float(np.mean(v))), ('harmonic mean', metrics.hmean),
           ('source harmonic mean', lambda v: metrics.hmean(v[:half])),
           ('target harmonic mean', lambda v: metrics.hmean(v[half:]))]
  return [[name + label, '', *[mean(values) for values in rows.values()]]
          for name, mean in means]


def official_rows(results: list[metrics.SectionResult]) -> list[list]:
  """One system's result table as the official evaluator writes <team>_result.csv: per machine
  its sections' columns and mean rows, then the means over everything, the official score and
  (where the results carry their clips' labels and scores) its ci95."""
  out = []
  for machine in sorted({r.machine for r in results}):
    mine = [r for r in results if r.machine == machine]
    out.append([machine])
    out.append(['section', *metrics.SECTION_COLUMNS])
    out += [[r.section, *[r.values.get(c, '') for c in metrics.SECTION_COLUMNS]] for r in mine]
    out.append(_KINDS_HEADER[:2 + len(metrics.domain_rows(mine))])
    out += _means(mine, '')
    out.append([])
  out.append(_KINDS_HEADER[:2 + len(metrics.domain_rows(results))])
  out += _means(results, ' over all machine types, sections, and domains')
  out.append([])
  out.append([metrics.OFFICIAL_SCORE, '', metrics.summarise(results)[metrics.OFFICIAL_SCORE]])
  if all(r.labels is not None for r in results):
    out.append([metrics.OFFICIAL_CI95, '', metrics.official_ci95(results)])
  return out


def write_official_csv(path: str, results: list[metrics.SectionResult]) -> None:
  atomic_write_csv(path, official_rows(results))


def official_text(results: list[metrics.SectionResult]) -> str:
  """`official_rows` as aligned text, values in %."""
  cells = [[f'{100 * v:.2f}' if isinstance(v, float) else str(v) for v in row]
           for row in official_rows(results)]
  width = max(len(r) for r in cells)
  widths = [max((len(r[i]) for r in cells if i < len(r) and len(r) > 1), default=0)
            for i in range(width)]
  return '\n'.join('  '.join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in
                             enumerate(zip(r, widths))).rstrip() if len(r) > 1 else
                   ''.join(r) for r in cells)
