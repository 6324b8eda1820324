"""python -m checkpoints_convert {beats,audiomae} --input FILE --output DIR

Converts an official PyTorch checkpoint into DIR (Orbax params + config.json) for
`asd_jax.encoders.load_encoder(DIR)`. A bad file exits with status 1 and one line naming it.
"""
from __future__ import annotations

import argparse
import sys
import time

from checkpoints_convert.convert import (ConversionError, convert_audiomae, convert_beats,
                                         read_torch_file)


def parse_args(argv):
  parser = argparse.ArgumentParser(
      prog='python -m checkpoints_convert', description=__doc__.split('\n\n')[1],
      formatter_class=argparse.RawDescriptionHelpFormatter)
  sub = parser.add_subparsers(dest='model', required=True, metavar='{beats,audiomae}')
  for name, help_text in (('beats', 'BEATs .pt file (microsoft/unilm), pretrained or fine-tuned'),
                          ('audiomae', 'AudioMAE pretrained.pth or finetuned.pth')):
    p = sub.add_parser(name, help=help_text, description=help_text)
    p.add_argument('--input', required=True, help='official PyTorch checkpoint file')
    p.add_argument('--output', required=True, help='folder to write (replaced atomically)')
    if name == 'audiomae':
      p.add_argument('--num_heads', type=int, default=None,
                     help='attention heads; the file does not record them (default: from the '
                          'width of the released models, 768 -> 12)')
  return parser.parse_args(argv)


def main(argv=None) -> int:
  args = parse_args(sys.argv[1:] if argv is None else argv)
  start = time.perf_counter()
  try:
    checkpoint = read_torch_file(args.input)
    if args.model == 'beats':
      converted = convert_beats(checkpoint, args.input)
    else:
      converted = convert_audiomae(checkpoint, args.input, args.num_heads)
    from asd_jax.encoders.checkpoint import save_converted
    save_converted(args.output, converted.params, converted.config)
  except ConversionError as e:
    print(f'error: {e}', file=sys.stderr)
    return 1
  except OSError as e:
    print(f'error: {args.output}: cannot write ({e.strerror or e})', file=sys.stderr)
    return 1
  c = converted.config
  sizes = (f'{c.encoder_layers} layers, width {c.width}, {c.encoder_attention_heads} heads'
           if args.model == 'beats' else f'{c.depth} blocks, width {c.width}, {c.num_heads} heads')
  print(f'read {args.input}: {args.model} {converted.kind}, {sizes}, '
        f'{converted.num_params / 1e6:.2f} M parameters')
  if converted.dropped:
    print(f'dropped {len(converted.dropped)} pre-training keys: '
          f'{", ".join(converted.dropped[:6])}{" ..." if len(converted.dropped) > 6 else ""}')
  print(f'wrote {args.output} in {time.perf_counter() - start:.1f} s')
  return 0


if __name__ == '__main__':
  sys.exit(main())
