"""`asd-jax <command> [--flags]`: one console script, one absl app per command."""
from __future__ import annotations

import importlib
import importlib.util
import os
import sys

COMMANDS = {  # each the first line of the command's --help (tests/test_cli.py checks)
    'synth': 'Write the built-in synthetic two-channel DCASE-style dataset.',
    'inspect': 'Validate a DCASE-layout dataset and print its summary.',
    'pretrain': 'Pre-train tiny encoders on your own normal recordings (masked fbank patches).',
    'train': 'Train the configured encoder branches (LoRA, gated fusion, ArcFace heads).',
    'run': 'Run the whole job: train, embed, score, baselines, evaluate (resumable).',
    'status': 'Say which stages of a workdir are done, stale (and why) or missing.',
    'export': 'Export a finished run as a detector folder that scores new recordings (asd-jax score).',
    'score': 'Score WAV files and folders with an exported detector (asd-jax export).',
    'evaluate': 'Score a submission folder against ground truth as the official evaluator does.',
    'bench': 'Measure speed and memory of the JAX path against PyTorch in one run.',
}
SUMMARY = ('asd-jax: unsupervised anomalous sound detection for machine condition monitoring '
           '(DCASE 2026 Task 2) in JAX.')


def usage() -> str:
  lines = [SUMMARY, '',
           'usage: asd-jax <command> [--flag=value ...]   (asd-jax <command> --help for flags)',
           '', 'commands:']
  lines += [f'  {name:<9} {text}' for name, text in COMMANDS.items()]
  return '\n'.join(lines)


def main(argv=None) -> None:
  argv = list(sys.argv if argv is None else argv)
  if len(argv) < 2 or argv[1] in ('-h', '--help', 'help'):
    print(usage())
    sys.exit(0 if len(argv) >= 2 else 2)
  command = argv[1]
  if command not in COMMANDS:
    print(f'asd-jax: unknown command {command!r}\n\n{usage()}', file=sys.stderr)
    sys.exit(2)
  sys.argv = argv = _with_config_file(argv)
  overrides = [a.split('=')[0] for a in argv[2:] if a.startswith('--config.')]
  try:  # ml_collections raises for a misspelt --config.<field> when it parses the flags
    _run_command(command, argv)
  except (AttributeError, KeyError) as e:
    if not overrides:
      raise
    _fail_on_unknown_field(e, overrides)


def _run_command(command: str, argv: list[str]) -> None:
  from absl import app, flags
  module = importlib.import_module(f'asd_jax.cli.{command}')
  # absl's --help shows the docstring of __main__ and the key flags of the module named by
  # sys.argv[0]: make both the command's.
  by_module = flags.FLAGS.flags_by_module_dict()
  for name in (module.__name__, 'asd_jax.cli.common'):  # common defines --config for commands
    for flag in by_module.get(name, []):
      flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)
  sys.modules['__main__'].__doc__ = module.__doc__
  app.run(_quiet_unless_asked(module.main), argv=[f'asd-jax {command}', *argv[2:]])


def _with_config_file(argv: list[str]) -> list[str]:
  """argv with a shipped config's name (--config=dcase2026) replaced by its file; a config that
  does not exist or cannot be loaded ends the command in one line."""
  from asd_jax.cli.common import config_names, config_path
  out = list(argv)
  for i, arg in enumerate(out):
    if arg == '--config' and i + 1 < len(out):
      index, given = i + 1, out[i + 1]
    elif arg.startswith('--config='):
      index, given = i, arg.split('=', 1)[1]
    else:
      continue
    path = config_path(given)
    if not os.path.isfile(path):
      _fail(f'--config={given}: no such config file or shipped config; the shipped ones: '
            f'{", ".join(config_names())}')
    try:
      spec = importlib.util.spec_from_file_location('asd_jax_config_check', path)
      loaded = importlib.util.module_from_spec(spec)
      spec.loader.exec_module(loaded)
      loaded.get_config()
    except Exception as e:  # noqa: BLE001 - whatever a config file does wrong, one line
      _fail(f'--config={given}: cannot be loaded: {type(e).__name__}: {e}'.splitlines()[0])
    out[index] = path if index == i + 1 else f'--config={path}'
  return out


def _fail(message: str) -> None:
  print(f'error: {message}', file=sys.stderr)
  sys.exit(1)


def _fail_on_unknown_field(error: BaseException, overrides: list[str]) -> None:
  """One line for a misspelt --config.<field> (ml_collections raises a bare AttributeError
  that wraps a KeyError carrying its suggestion); any other error is raised again."""
  cause = error
  while cause.args and isinstance(cause.args[0], BaseException):
    cause = cause.args[0]
  lines = str(cause.args[0] if cause.args else cause).split('\n')
  field = lines[0].strip('\'"')
  named = [o for o in overrides if field in o.split('.')[1:]]
  if not named:  # not a config field after all: a genuine error in the command's import
    raise error
  hint = f' {lines[1]}' if len(lines) > 1 else ''
  _fail(f'{", ".join(named)}: the config has no field {field!r}.{hint}')


def _quiet_unless_asked(command_main):
  """Library INFO logs (Orbax, XLA) drown the progress bars: warnings only unless --verbosity
  is given. (absl's app.run raises an unset --verbosity to INFO after parsing, so a changed
  flag default does not survive; the level is set once the flags are parsed.)"""

  def run(argv):
    from absl import flags, logging
    if not flags.FLAGS['verbosity'].present:
      logging.set_verbosity(logging.WARNING)
    return command_main(argv)

  return run


if __name__ == '__main__':
  main()
