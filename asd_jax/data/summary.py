"""Human-readable summary of a manifest (what `asd-jax inspect` prints)."""
from __future__ import annotations

import collections

from asd_jax.data.layout import Manifest


def summary_table(manifest: Manifest) -> str:
  """One row per (dataset, machine, section): clip counts per split/domain/label, attributes,
  and the audio format; then totals and any problems met."""
  header = ('dataset', 'machine', 'sec', 'train src', 'train tgt', 'test src n/a',
            'test tgt n/a', 'test ?', 'attributes')
  rows = []
  for dataset, machine, section in manifest.sections():
    clips = manifest.select(dataset=dataset, machine=machine, section=section)
    count = collections.Counter((c.split, c.domain, c.label) for c in clips)
    values = collections.defaultdict(set)
    for c in clips:
      for key, value in c.attributes:
        values[key].add(value)
    attrs = ' '.join(f'{k}={{{",".join(sorted(v))}}}' for k, v in sorted(values.items())) or '-'
    unknown = sum(n for (split, _, label), n in count.items() if split == 'test' and label is None)
    rows.append((dataset, machine, section,
                 str(count['train', 'source', 'normal']), str(count['train', 'target', 'normal']),
                 f"{count['test', 'source', 'normal']}/{count['test', 'source', 'anomaly']}",
                 f"{count['test', 'target', 'normal']}/{count['test', 'target', 'anomaly']}",
                 str(unknown), attrs))
  widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
  line = lambda r: '  '.join(v.ljust(w) for v, w in zip(r, widths)).rstrip()
  out = [line(header), line(['-' * w for w in widths]), *map(line, rows)]
  formats = collections.Counter((c.channels, c.sample_rate) for c in manifest.clips)
  durations = [c.duration for c in manifest.clips]
  out.append('')
  out.append(f'{len(manifest.clips)} clips, {len(manifest.machines)} machine types; audio: ' +
             ', '.join(f'{n} x {ch} ch @ {sr} Hz' for (ch, sr), n in formats.most_common()) +
             f'; duration {min(durations):.2f}–{max(durations):.2f} s')
  if manifest.problems:
    out.append(manifest.skipped_report())
  return '\n'.join(out)
