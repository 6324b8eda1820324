"""Train state and the jitted data-parallel training step.

One `jax.jit` program over a 1-D device mesh ('data'): the batch is sharded on its leading
axis, parameters and optimiser state are replicated, and XLA's SPMD partitioner inserts the
gradient all-reduce. We use jit + shardings rather than pmap because the same program then runs
unchanged on 1 CPU, 8 GPUs or a TPU slice (multi-host included), and results do not depend on
the device count: random bits come from the partitionable threefry, keyed by (seed, step).
"""
from __future__ import annotations

import functools
from typing import Any

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from asd_jax.encoders import lora as lora_lib
from asd_jax.model.arcface import arcface_loss

jax.config.update('jax_threefry_partitionable', True)


@flax.struct.dataclass
class TrainState:
  step: jnp.ndarray
  trainable: Any  # LoRA, fusion, projection, heads: differentiated and updated
  frozen: Any  # the pre-trained encoder weights: read only
  opt_state: Any
  rng: jnp.ndarray  # base key; each step folds in its step number


def make_optimizer(optim, total_steps: int) -> tuple[optax.GradientTransformation, Any]:
  """AdamW with linear warm-up and cosine decay, after global-norm gradient clipping."""
  if total_steps < 2:  # nothing to warm up and decay over: one step at the peak, or none
    schedule = optax.constant_schedule(optim.learning_rate)
  else:
    schedule = optax.warmup_cosine_decay_schedule(
        0.0, optim.learning_rate, min(optim.warmup_steps, total_steps - 1), total_steps)
  tx = optax.chain(optax.clip_by_global_norm(optim.grad_clip_norm),
                   optax.adamw(schedule, weight_decay=optim.weight_decay))
  return tx, schedule


def create_train_state(params, tx, is_trainable, seed: int) -> TrainState:
  trainable, frozen = lora_lib.split_trainable(params, is_trainable)
  return TrainState(step=jnp.zeros((), jnp.int32), trainable=trainable, frozen=frozen,
                    opt_state=tx.init(trainable), rng=jax.random.PRNGKey(seed))


def loss_and_metrics(model, params, batch, rng, arcface, deterministic: bool):
  """L = L_attr (masked where a clip has no attribute class) + L_domain, and monitors."""
  out = model.apply({'params': params}, batch['wave'], deterministic=deterministic,
                    rngs=None if deterministic else {'dropout': rng})
  attr_loss, attr_acc = arcface_loss(out['attribute_cos'], batch['attribute_id'], arcface.scale,
                                     arcface.margin, mask=batch['attribute_id'] >= 0)
  dom_loss, dom_acc = arcface_loss(out['domain_cos'], batch['domain_id'], arcface.scale,
                                   arcface.margin, mask=batch['domain_id'] >= 0)
  metrics = {'attr_loss': attr_loss, 'domain_loss': dom_loss, 'attr_acc': attr_acc,
             'domain_acc': dom_acc, 'gate_mean': out['gate'].mean()}
  return attr_loss + dom_loss, metrics


def train_step(state: TrainState, batch, *, model, tx, schedule, arcface):
  """One optimiser step on a global batch; pure, jitted by `compile_train_step`."""
  rng = jax.random.fold_in(state.rng, state.step)

  def objective(trainable):
    return loss_and_metrics(model, lora_lib.combine(trainable, state.frozen), batch, rng,
                            arcface, deterministic=False)

  (loss, metrics), grads = jax.value_and_grad(objective, has_aux=True)(state.trainable)
  updates, opt_state = tx.update(grads, state.opt_state, state.trainable)
  trainable = optax.apply_updates(state.trainable, updates)
  metrics = dict(metrics, loss=loss, grad_norm=optax.tree.norm(grads),
                 learning_rate=schedule(state.step))
  return state.replace(step=state.step + 1, trainable=trainable, opt_state=opt_state), metrics


def data_mesh(devices=None) -> Mesh:
  return Mesh(np.asarray(devices if devices is not None else jax.devices()), ('data',))


def compile_train_step(mesh: Mesh, **static):
  """jit(train_step) with the batch sharded over 'data' and the state replicated (donated)."""
  replicated = NamedSharding(mesh, PartitionSpec())
  return jax.jit(functools.partial(train_step, **static),
                 in_shardings=(replicated, NamedSharding(mesh, PartitionSpec('data'))),
                 out_shardings=(replicated, replicated), donate_argnums=(0,))


def shard_batch(mesh: Mesh, batch: dict) -> dict:
  """Host batch (this process's rows) -> global arrays sharded on 'data'."""
  sharding = NamedSharding(mesh, PartitionSpec('data'))
  return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v))
          for k, v in batch.items()}


def replicate(mesh: Mesh, tree):
  """Every leaf as one global array replicated over the mesh; each process supplies its own
  (identical) host copy, so this works across hosts too."""
  sharding = NamedSharding(mesh, PartitionSpec())

  def put(leaf):
    if isinstance(leaf, jax.Array) and leaf.sharding == sharding:
      return leaf
    value = np.asarray(jax.device_get(leaf))
    return jax.make_array_from_callback(value.shape, sharding, lambda index: value[index])

  return jax.tree.map(put, tree)


def local_copy(tree):
  """A replicated global tree as arrays on this process's first device, for work each process
  does on its own (evaluation, embedding)."""
  device = jax.local_devices()[0]
  return jax.tree.map(lambda leaf: leaf.addressable_shards[0].data if isinstance(
      leaf, jax.Array) else jax.device_put(leaf, device), tree)
