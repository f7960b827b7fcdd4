"""`Registry`: the one table type for every set of variants (likelihoods, bodies, priors, ...).

A registry maps names to entries. Its names are what a `VAEConfig` field (or a command-line flag)
accepts; looking up any other value raises one `ConfigError` that names the field, the valid
names and the near ones:

>>> COLOURS = Registry("colour", "colour")
>>> COLOURS.register("red", (255, 0, 0), help="the first one")
>>> COLOURS.register("green", (0, 255, 0))
>>> COLOURS["red"], sorted(COLOURS), "blue" in COLOURS
((255, 0, 0), ['green', 'red'], False)
>>> COLOURS.hint("rde")
"unknown colour (did you mean 'red'?); choose one of ['green', 'red']."

A registry whose entries need TensorFlow is *declared* without it (`declare`: each name, a line of
help and the facts a config's validation needs) in `tfp_vae.choices`, and its entries are
registered by its `home` module, which the first look-up of an entry imports. So the command line
and `VAEConfig` know every name without importing TensorFlow.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Iterator
from typing import Any, Generic, TypeVar

from tfp_vae.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Names -> entries of one kind of variant.

    Args:
      field: the config field (or argument) whose values are this registry's names, for messages.
      kind: what an entry is, for messages ("likelihood family").
      home: module that registers the entries of declared names; imported on the first look-up.
    """

    def __init__(self, field: str, kind: str, home: str | None = None):
        self.field, self.kind, self.home = field, kind, home
        self._help: dict[str, str] = {}
        self._facts: dict[str, dict[str, Any]] = {}
        self._entries: dict[str, T] = {}
        self._synonyms: dict[str, list[str]] = {}  # another word for an entry -> its names

    # ------------------------------------------------------------------ filling
    def declare(self, name: str, help: str = "", synonyms: tuple[str, ...] = (), **facts: Any) -> None:
        """Makes `name` a valid choice before its entry exists; `facts` are read by `fact`, and
        `synonyms` (other words users type for it, e.g. "gaussian") only suggest it in errors."""
        if name in self._help:
            raise ValueError(f"{self.kind} {name!r} is declared twice.")
        self._help[name], self._facts[name] = help, facts
        for word in synonyms:
            self._synonyms.setdefault(word, []).append(name)

    def register(self, name: str, entry: T, *, help: str = "", **facts: Any) -> None:
        """Adds `entry` under `name`. A registry with a `home` takes only declared names."""
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice.")
        if self.home is not None and name not in self._help:
            raise ValueError(
                f"{self.kind} {name!r} is not declared; declare it in tfp_vae/choices.py, where the "
                "command line and VAEConfig read the names without importing TensorFlow."
            )
        if name not in self._help:
            self.declare(name, help, **facts)
        self._entries[name] = entry

    # ------------------------------------------------------------------ reading
    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._help

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._help))

    def __len__(self) -> int:
        return len(self._help)

    def __getitem__(self, name: str) -> T:
        self.check(name)
        if name not in self._entries and self.home is not None:
            importlib.import_module(self.home)
        return self._entries[name]

    def __repr__(self) -> str:
        return f"Registry({self.field!r}: {', '.join(self)})"

    def names(self) -> list[str]:
        """The valid names, sorted."""
        return list(self)

    def items(self) -> list[tuple[str, T]]:
        return [(name, self[name]) for name in self]

    def values(self) -> list[T]:
        return [self[name] for name in self]

    def help(self, name: str) -> str:
        """The one line of help declared with `name`."""
        self.check(name)
        return self._help[name]

    def fact(self, name: str, key: str) -> Any:
        """A fact declared with `name` (e.g. a prior's `analytic_kl`), without importing its entry."""
        self.check(name)
        return self._facts[name][key]

    def check(self, name: object, flag: str | None = None) -> str:
        """`name` if it is a valid choice, else `ConfigError` naming `flag` (default: the field)."""
        if name not in self:
            raise ConfigError(f"{flag or self.field}={name!r}: {self.hint(name)}", field=self.field)
        return name  # type: ignore[return-value]

    def hint(self, name: object) -> str:
        """What to say of a value that is not a name here: the near names, then all of them."""
        return hint(self.kind, name, list(self), self._synonyms)


def hint(kind: str, value: object, names: list[str], synonyms: dict[str, list[str]] | None = None) -> str:
    """ "unknown KIND (did you mean ...?); choose one of NAMES." for a `value` not in `names`;
    `synonyms` maps other words users type to the names they mean."""
    synonyms = synonyms or {}
    near: list[str] = []
    if isinstance(value, str):
        for word in difflib.get_close_matches(value.lower(), [*names, *synonyms], n=3, cutoff=0.6):
            near += [n for n in sorted(synonyms.get(word, [word])) if n not in near]
    guess = f" (did you mean {' or '.join(map(repr, near))}?)" if near else ""
    return f"unknown {kind}{guess}; choose one of {names}."
