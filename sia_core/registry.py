"""One registry per family of names (attacks, RoI methods, recipes, datasets, ...): name, label, description,
defaults and factory in one entry, read by the CLI choices, the page widgets and the engine's factories alike."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Generic, Iterable, Iterator, Mapping, TypeVar

from sia_core.errors import ConfigError

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One named member of a family.

    Args:
        name: the identifier the CLI, URLs and cache keys use ("pgd-linf").
        label: what a person reads in a widget ("PGD (L∞)").
        description: one or two plain sentences for help texts and captions.
        factory: builds the thing; called with `defaults` overridden by the caller's options.
        defaults: keyword arguments the factory gets unless the caller overrides them.
        traits: family-specific facts a widget or the CLI needs (e.g. a dataset that needs a path).
    """

    name: str
    label: str
    description: str
    factory: Callable[..., T]
    defaults: Mapping[str, Any] = field(default_factory=dict)
    traits: Mapping[str, Any] = field(default_factory=dict)

    def build(self, **options: Any) -> T:
        return self.factory(**{**self.defaults, **options})


class Registry(Generic[T]):
    """An ordered, read-only collection of entries; unknown names raise a `ConfigError` listing the choices."""

    def __init__(self, family: str, entries: Iterable[Entry[T]]) -> None:
        self.family = family
        by_name: dict[str, Entry[T]] = {}
        for entry in entries:
            if entry.name in by_name:
                raise ValueError(f"duplicate {family} {entry.name!r}")
            by_name[entry.name] = entry
        self._entries = MappingProxyType(by_name)

    def __getitem__(self, name: str) -> Entry[T]:
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise ConfigError(f"Unknown {self.family} {name!r}; choose one of {', '.join(self._entries)}.") from None

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Entry[T]]:
        return iter(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def labels(self) -> dict[str, str]:
        """name -> label, in registry order (a selectbox's `format_func` reads it)."""
        return {name: entry.label for name, entry in self._entries.items()}

    def descriptions(self) -> dict[str, str]:
        return {name: entry.description for name, entry in self._entries.items()}

    def help_text(self) -> str:
        """Each option's label and description, a paragraph each: a selectbox's help, which shows the labels its
        options are chosen by (descriptions alone read as one contradictory paragraph)."""
        return "\n\n".join(f"**{entry.label}**: {entry.description}" for entry in self._entries.values())

    def build(self, name: str, **options: Any) -> T:
        """The factory of `name`, with its defaults overridden by `options`."""
        return self[name].build(**options)
