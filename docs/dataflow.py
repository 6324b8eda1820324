"""Draws docs/dataflow.png, the data flow of asd-jax, from the code itself.

python docs/dataflow.py [--output docs/dataflow.png]

Each box names the module that does the step (the script fails if one has moved, so the picture
cannot silently go stale) and its numbers (LoRA rank, embedding size, k, fusion weights,
systems) are read from configs/default.py and the scoring presets.
"""
from __future__ import annotations

import argparse
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def steps(config) -> tuple[list, list, tuple]:
  """(first row, second row, training-only box): (title, detail, module path) each."""
  from asd_jax.scoring import systems
  names = ', '.join(s.name for s in systems.presets(config.score))
  lora = config.lora
  levels = [f"whole-clip {name.replace('_', ' ').replace('logmel', 'log-mel')}"
            for name in config.score.clip_banks]
  level = ''.join(f'\n+ {name}' for name in levels)
  level = f'\nof embedding{level}' if levels else ''
  first = [
      ('DCASE-layout WAVs', 'near + far channel, 16 kHz;\nbad files named, then skipped\n'
       'or refused', 'asd_jax/data/layout.py'),
      ('Grain loader', 'crop / pad; train: swap,\ngain, channel dropout',
       'asd_jax/data/pipeline.py'),
      ('Kaldi fbank', '128 mel bins, per-encoder\nnormalisation (on device)',
       'asd_jax/audio/fbank.py'),
      ('BEATs | AudioMAE', f'frozen, LoRA r={lora.rank} α={lora.alpha:g}\non '
       f'{"/".join(lora.targets)}; both channels', 'asd_jax/encoders/lora.py'),
      ('gated fusion', 'α_t = σ(W[h1;h2]+b), pool,\n'
       f'project → e ∈ R^{config.model.embed_dim}', 'asd_jax/model/fusion.py'),
  ]
  second = [
      ('reference banks', 'embeddings of the normal\ntraining clips',
       'asd_jax/inference/embed.py'),
      ('scores', f'BEATs: Ledoit-Wolf Mahalanobis{level},\nmin over source / target banks\n'
       f'AudioMAE: cosine kNN, k={config.score.knn_k}', 'asd_jax/scoring/normal_reference.py'),
      ('robust z', 'median / MAD of normal\nreference scores only',
       'asd_jax/scoring/calibration.py'),
      ('score fusion', f'w = {config.score.beats_weight:g} '
       f'(task2_3: {config.score.conservative_beats_weight:g})\n{names}',
       'asd_jax/scoring/systems.py'),
      ('submission + metrics', 'DCASE CSVs; AUC (source /\ntarget), pAUC, official score',
       'asd_jax/evaluation/evaluate.py'),
  ]
  heads = ('ArcFace heads', f'attribute + domain\ns={config.arcface.scale:g}, '
           f'm={config.arcface.margin:g}\n(training only; tiny\ndefault: '
           f'{config.train.steps} steps)', 'asd_jax/model/arcface.py')
  return first, second, heads


def draw(output: str) -> None:
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
  sys.path.insert(0, REPO)
  from asd_jax.configs import default
  first, second, heads = steps(default.get_config())
  for _, _, module in (*first, *second, heads):
    if not os.path.exists(os.path.join(REPO, module)):
      raise SystemExit(f'{module}: named in the data-flow picture but not in the repository')
  width, height, gap = 2.6, 1.35, 0.45
  fig, ax = plt.subplots(figsize=(17, 5.6))
  ax.set_xlim(-0.2, 6 * (width + gap))
  ax.set_ylim(-0.3, 4.1)
  ax.axis('off')

  def box(x, y, step, colour):
    title, detail, module = step
    ax.add_patch(FancyBboxPatch((x, y), width, height, boxstyle='round,pad=0.05', fc=colour,
                                ec='0.3'))
    ax.text(x + width / 2, y + height - 0.2, title, ha='center', va='center', weight='bold',
            fontsize=10)
    ax.text(x + width / 2, y + height / 2 - 0.08, detail, ha='center', va='center', fontsize=7.6)
    ax.text(x + width / 2, y + 0.1, module, ha='center', va='center', fontsize=6.8,
            family='monospace', color='0.35')

  def arrow(start, end, style='-|>', **kwargs):
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle=style, mutation_scale=14, color='0.25',
                                 **kwargs))

  top, bottom = 2.5, 0.2
  for i, step in enumerate(first):
    x = i * (width + gap)
    box(x, top, step, '#dbe9f6')
    if i:
      arrow((x - gap, top + height / 2), (x, top + height / 2))
  hx = len(first) * (width + gap)
  box(hx, top, heads, '#f6e3d5')
  arrow((hx - gap, top + height / 2), (hx, top + height / 2), linestyle='--')
  for i, step in enumerate(second):
    x = (len(first) - 1 - i) * (width + gap)
    box(x, bottom, step, '#e2f0d9')
    if i:
      arrow((x + width + gap, bottom + height / 2), (x + width, bottom + height / 2))
  last = (len(first) - 1) * (width + gap) + width / 2
  arrow((last, top), (last, bottom + height))
  ax.text(last + 0.08, (top + bottom + height) / 2, 'inference: heads dropped', fontsize=8,
          va='center')
  ax.set_title('asd-jax: one model per encoder, trained over all machine types; '
               'scored per machine type', fontsize=11)
  fig.tight_layout()
  os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
  fig.savefig(output, dpi=110)
  plt.close(fig)


if __name__ == '__main__':
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--output', default=os.path.join(REPO, 'docs', 'dataflow.png'))
  draw(parser.parse_args().output)
