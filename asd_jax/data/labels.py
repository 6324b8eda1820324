"""Class vocabularies for the ArcFace heads, fixed from the training clips (DESIGN §7)."""
from __future__ import annotations

import dataclasses
import json

from asd_jax.data.layout import Clip

DOMAINS = ('source', 'target')
NO_CLASS = -1


@dataclasses.dataclass(frozen=True)
class LabelSpace:
  """Machine ids, attribute classes = distinct (machine, attribute string) pairs seen in
  training (clips without attributes get NO_CLASS, masked in the loss), domain ids."""
  machines: tuple[str, ...]
  attributes: tuple[tuple[str, str], ...]

  @classmethod
  def from_clips(cls, train_clips: list[Clip]) -> 'LabelSpace':
    machines = tuple(sorted({c.machine for c in train_clips}))
    attributes = tuple(sorted({(c.machine, c.attribute_string) for c in train_clips
                               if c.has_attributes}))
    return cls(machines, attributes)

  @property
  def num_attributes(self) -> int:
    return len(self.attributes)

  def encode(self, clip: Clip) -> dict[str, int]:
    attribute = (clip.machine, clip.attribute_string)
    return {
        'machine_id': self.machines.index(clip.machine) if clip.machine in self.machines
                      else NO_CLASS,
        'attribute_id': self.attributes.index(attribute) if attribute in self.attributes
                        else NO_CLASS,
        'domain_id': DOMAINS.index(clip.domain) if clip.domain in DOMAINS else NO_CLASS,
    }

  def to_json(self) -> str:
    return json.dumps({'machines': self.machines, 'attributes': self.attributes})

  @classmethod
  def from_json(cls, text: str) -> 'LabelSpace':
    values = json.loads(text)
    return cls(tuple(values['machines']), tuple(tuple(a) for a in values['attributes']))
