"""Orbax checkpoints of a branch: trainable params, optimiser state, step, RNG and the Grain
iterator state, so an interrupted run resumes exactly. The frozen encoder weights are not
stored: they are rebuilt from the converted checkpoint (or the seed) the config names."""
from __future__ import annotations

import grain
import orbax.checkpoint as ocp

from asd_jax.train.step import TrainState


def checkpoint_manager(directory: str, keep: int) -> ocp.CheckpointManager:
  return ocp.CheckpointManager(
      directory, options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True),
      item_names=('state', 'data'))


def _saved_part(state: TrainState) -> dict:
  return {'step': state.step, 'trainable': state.trainable, 'opt_state': state.opt_state,
          'rng': state.rng}


def save(manager: ocp.CheckpointManager, state: TrainState, data_iterator) -> None:
  step = int(state.step)
  args = {'state': ocp.args.StandardSave(_saved_part(state))}
  if data_iterator is not None:
    args['data'] = grain.checkpoint.CheckpointSave(data_iterator)
  manager.save(step, args=ocp.args.Composite(**args))
  manager.wait_until_finished()


def restore(manager: ocp.CheckpointManager, state: TrainState, data_iterator,
            step: int | None = None) -> TrainState:
  """`state` with the saved parts of checkpoint `step` (default latest); the iterator is
  moved to where it was when that checkpoint was written."""
  step = manager.latest_step() if step is None else step
  args = {'state': ocp.args.StandardRestore(_saved_part(state))}
  if data_iterator is not None:
    args['data'] = grain.checkpoint.CheckpointRestore(data_iterator)
  saved = manager.restore(step, args=ocp.args.Composite(**args))['state']
  return state.replace(step=saved['step'], trainable=saved['trainable'],
                       opt_state=saved['opt_state'], rng=saved['rng'])
