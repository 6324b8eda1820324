"""Per-machine ROC curves and score histograms (normal vs anomaly, source vs target)."""
from __future__ import annotations

import os

import numpy as np


def plot_machine(path_stem: str, title: str, labels, scores, domains) -> list[str]:
  """Writes <stem>_roc.png and <stem>_hist.png; returns their paths."""
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  from sklearn.metrics import roc_curve
  labels, scores, domains = map(np.asarray, (labels, scores, domains))
  os.makedirs(os.path.dirname(path_stem), exist_ok=True)
  written = []
  fig, ax = plt.subplots(figsize=(4.5, 4.5))
  for domain in ('source', 'target'):
    keep = (domains == domain) | (labels == 1)
    if (labels[keep] == 0).any() and (labels[keep] == 1).any():
      fpr, tpr, _ = roc_curve(labels[keep], scores[keep])
      ax.plot(fpr, tpr, label=f'{domain} normals vs all anomalies')
  ax.plot([0, 1], [0, 1], 'k:', lw=0.8)
  ax.axvline(0.1, color='grey', lw=0.8, ls='--')
  ax.set(xlabel='false positive rate', ylabel='true positive rate', title=f'ROC: {title}')
  ax.legend(fontsize=8, loc='lower right')
  fig.tight_layout()
  written.append(f'{path_stem}_roc.png')
  fig.savefig(written[-1], dpi=110)
  plt.close(fig)
  fig, ax = plt.subplots(figsize=(6, 3.5))
  bins = np.linspace(scores.min(), scores.max(), 30)
  for label, name in ((0, 'normal'), (1, 'anomaly')):
    for domain, style in (('source', 'stepfilled'), ('target', 'step')):
      chosen = scores[(labels == label) & (domains == domain)]
      if len(chosen):
        ax.hist(chosen, bins=bins, histtype=style, alpha=0.5 if style == 'stepfilled' else 1,
                lw=1.5, label=f'{name} / {domain}', color='tab:blue' if label == 0 else 'tab:red',
                ls='-' if domain == 'source' else '--')
  ax.set(xlabel='anomaly score', ylabel='clips', title=f'Scores: {title}')
  ax.legend(fontsize=8)
  fig.tight_layout()
  written.append(f'{path_stem}_hist.png')
  fig.savefig(written[-1], dpi=110)
  plt.close(fig)
  return written


def plot_loss_curves(path: str, curves: dict[str, list[dict]]) -> str:
  """Pre-training curves, {name: [{'step', 'masked_mse', 'visible_mse'}, ...]}, on a log scale;
  a second panel with the unit-contrastive pair accuracy when any curve logged it."""
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  contrastive = any('pair_accuracy' in r for curve in curves.values() for r in curve)
  fig, axes = plt.subplots(1, 2 if contrastive else 1, figsize=(11 if contrastive else 6, 3.6),
                           squeeze=False)
  ax = axes[0, 0]
  for name, curve in curves.items():
    steps = [r['step'] for r in curve]
    line, = ax.plot(steps, [r['masked_mse'] for r in curve], label=f'{name}: masked patches')
    ax.plot(steps, [r['visible_mse'] for r in curve], ls='--', color=line.get_color(),
            label=f'{name}: visible patches')
    if contrastive and 'pair_accuracy' in curve[0]:  # one family per batch: noisy, so smoothed
      accuracy = np.array([r['pair_accuracy'] for r in curve])
      window = min(20, len(accuracy))
      smooth = np.convolve(accuracy, np.ones(window) / window, mode='valid')
      axes[0, 1].plot(steps, accuracy, color=line.get_color(), alpha=0.25, lw=0.8)
      axes[0, 1].plot(steps[window - 1:], smooth, color=line.get_color(),
                      label=f'{name} (mean of {window} logged steps)')
  ax.set(xlabel='step', ylabel='reconstruction MSE (normalised fbank)', yscale='log',
         title='corpus pre-training')
  ax.legend(fontsize=8)
  if contrastive:
    axes[0, 1].set(xlabel='step', ylabel='share of rows that pick their own unit', ylim=(0, 1.02),
                   title='unit-contrastive pair accuracy (batch of 32 rows)')
    axes[0, 1].legend(fontsize=8)
  fig.tight_layout()
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path
