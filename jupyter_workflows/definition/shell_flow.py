"""Where templated values go in a shell command, and what they must be to stay data there.

``Facts`` is the lexer's sink. From each simple command it learns where a value (a mark)
flows into a variable (``n=${x}``, ``for n in ${x}``, ``declare``, ``printf -v``, ``set --``,
arguments of a function defined in the command) and where a variable or value is used in a
place the shell evaluates again:

- ``number``: arithmetic (``$((n))``, ``((n))``, ``let``, ``[[ n -eq 1 ]]``, ``declare -i``,
  subscripts, substring offsets), where bash evaluates ``a[$(cmd)]`` and runs ``cmd``;
- ``name``: a variable name (``read``, ``printf -v``, ``unset``, ``declare``, ``[[ -v ]]``,
  ``${!n}``, ``declare -n``), where bash evaluates a subscript in the name just the same;
- ``inert``: code parsed again (``eval``, ``sh -c``, ``bash -c``, ``su -c``, ``ssh host cmd``,
  ``trap``, ``alias``, ``source``, a shell reading a pipe, ``xargs -I`` into a shell).

``solve`` follows variables to the values assigned to them. A variable that is set by what
cannot be followed (``read``, ``mapfile``, ``getopts``) and used in one of these places makes
every value in the command meet that place's rule. Text in a nested ``sh -c`` script or an
``eval`` is lexed again, with the values in it kept as marks, so arithmetic inside it counts.
Data that leaves the shell (files, pipes into other programs) is not followed.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from .shell_commands import Command
from .shell_lexer import Lexer
from .shell_words import ARITH_NAME_RE, INERT, MARK_END, NEVER, Expansion, Word

PROMPTS = ("PS0", "PS1", "PS2", "PS4", "PROMPT_COMMAND")  # expanded again by the shell


@dataclass
class Site:
    """Where one mark landed: the quoting to escape its value for, or why it cannot be used."""

    quote: str
    refused: str | None = None


@dataclass
class Facts:
    """What is known about the marks of one command (or one nested script)."""

    sites: dict[str, Site] = field(default_factory=dict)
    needs: dict[str, dict[str, str]] = field(default_factory=dict)  # mark -> kind -> why
    flows: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    copies: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    uses: list[tuple[str, str, str]] = field(default_factory=list)  # (variable, kind, why)
    unknown: dict[str, str] = field(default_factory=dict)  # variable -> what sets it
    functions: set[str] = field(default_factory=set)
    calls: list[tuple[str, list[Word]]] = field(default_factory=list)
    pipelines: dict[int, set[str]] = field(default_factory=lambda: defaultdict(set))
    readers: dict[int, str] = field(default_factory=dict)  # pipelines whose input is code
    entities: dict[str, Expansion] = field(default_factory=dict)
    counter: list[int] = field(default_factory=lambda: [MARK_END - 1])
    quiet: int = 0  # > 0 while an eval text is lexed again: its sites are not the real ones
    unsure: list[tuple[str, str]] = field(default_factory=list)
    _used: set[tuple[str, str]] = field(default_factory=set)
    # Environment variables holding templated or untrusted text, and what each must be.
    env_names: frozenset[str] = frozenset()
    env_needs: dict[str, dict[str, str]] = field(default_factory=dict)

    # ------------------------------------------------------------------ the lexer's sink

    def site(self, char: str, quote: str, refused: str | None) -> None:
        if self.quiet:  # lexed again for eval: only a refusal there counts
            if refused:
                self.need({char}, NEVER, f"{refused}, in text the shell parses again")
            return
        known = self.sites.get(char)
        if known is None:
            self.sites[char] = Site(quote, refused)
        elif refused and not known.refused:
            known.refused = refused

    def need(self, marks: set[str] | frozenset[str], kind: str, why: str) -> None:
        for mark in marks:
            kinds = self.needs.setdefault(mark, {})
            if kind in kinds:
                continue  # known already (and an entity expanded already)
            kinds[kind] = why
            entity = self.entities.get(mark)
            if entity is not None:
                self.need(entity.marks, kind, why)
                self.use(entity.names, kind, why)

    def use(self, names: set[str] | frozenset[str], kind: str, why: str) -> None:
        for name in names:
            if (name, kind) not in self._used:
                self._used.add((name, kind))
                self.uses.append((name, kind, why))

    def function(self, name: str) -> None:
        self.functions.add(name)

    def command(self, words: list[Word], pipeline: int) -> None:
        for word in words:
            self.pipelines[pipeline] |= word.marks
            if word.role == "dup":
                why = "as the target of >&, which bash expands a second time"
                self.need(word.marks, INERT, why)
                self.use(word.names, INERT, why)
        # An unquoted $opt may expand to nothing, moving later words into its place: the
        # command is read with each such word there and gone (all of them beyond 4).
        vanishing = [k for k, word in enumerate(words) if word.may_vanish]
        choices: Iterable[tuple[bool, ...]] = itertools.product(
            (False, True), repeat=len(vanishing)
        )
        if len(vanishing) > 4:
            choices = [(False,) * len(vanishing), (True,) * len(vanishing)]
        for gone in choices:
            drop = {k for k, dropped in zip(vanishing, gone, strict=True) if dropped}
            Command(self, [w for k, w in enumerate(words) if k not in drop], pipeline).analyse()

    # ------------------------------------------------------------------ flows

    def flow(self, name: str, value: Word, *, arithmetic_names: bool = True) -> None:
        """``value`` may end up in variable ``name`` (``*``: some variable we cannot name)."""
        self.flows[name] |= value.marks
        self.copies[name] |= value.names
        if arithmetic_names:  # bash evaluates a value naming a variable as that variable
            self.copies[name] |= set(ARITH_NAME_RE.findall(value.text()))

    def inner_text(self, word: Word) -> str:
        """The word's text, each expansion replaced by a mark of its own (an entity)."""
        parts = []
        for item in word.items:
            if isinstance(item, Expansion):
                char = chr(self.counter[0])
                self.counter[0] -= 1
                self.entities[char] = item
                parts.append(char)
            else:
                parts.append(item)
        return "".join(parts)

    # ------------------------------------------------------------------ solving

    def solve(self) -> None:
        """Turn flows and uses into needs on marks."""
        for name, args in self.calls:
            if name in self.functions:
                for arg in args:
                    self.flow("@", arg, arithmetic_names=False)
        self.use(set(PROMPTS), INERT, "in a prompt variable, which the shell expands again")
        for pipeline, why in self.readers.items():
            self.need(self.pipelines[pipeline], INERT, why)
        reach = self._reach()
        done = 0
        while done < len(self.uses):  # needs on entities can add uses
            name, kind, why = self.uses[done]
            done += 1
            sources = reach.get(name, {name}) if name != "*" else set(reach) | self.env_names
            for source in sources:
                if source in self.env_names:
                    self.env_needs.setdefault(source, {}).setdefault(kind, why)
                marks = self.flows.get(source, set())
                if marks:
                    self.need(marks, kind, f"{why}, through {_variable(source)}")
                if source in self.unknown:
                    how = f"{_variable(source)} is set by {self.unknown[source]}"
                    self.unsure.append((kind, f"{why}; {how}, which cannot be followed"))
        everything = {m for m, site in self.sites.items() if site.quote != "comment"}
        for kind, why in self.unsure:
            self.need(everything, kind, why)

    def _reach(self) -> dict[str, set[str]]:
        """For each variable, the variables whose values it may hold (itself included)."""
        names = set(self.flows) | set(self.copies) | set(self.unknown)
        for targets in list(self.copies.values()):
            names |= targets
        names.discard("*")
        reach: dict[str, set[str]] = {}
        for start in names:
            seen, stack = {start}, [start]
            while stack:
                for source in self.copies.get(stack.pop(), ()):
                    for name in names if source == "*" else (source,):
                        if name not in seen:
                            seen.add(name)
                            stack.append(name)
            reach[start] = seen
        return reach

    def again(self, text: str) -> None:
        """``text`` run by this same shell (``eval``, ``trap``): its commands count here."""
        self.quiet += 1
        Lexer(text, self).run()
        self.quiet -= 1

    def nested(self, text: str, positional: list[Word], where: str) -> None:
        """``text`` run by another shell (``sh -c``, ``ssh``) with ``positional`` as $1 ..."""
        child = Facts(counter=self.counter)
        Lexer(text, child).run()
        self._merge(child, positional, where)

    def _merge(self, child: Facts, positional: list[Word], where: str) -> None:
        """What a nested script needs, as needs on this command."""
        child.solve()
        for mark, site in child.sites.items():
            if site.refused:
                self.need({mark}, NEVER, f"{site.refused} {where}")
        for mark, kinds in child.needs.items():
            for kind, why in kinds.items():
                self.need({mark}, kind, f"{why} {where}")
        for name, kind, why in child.uses:
            if name == "@":
                for word in positional:
                    self.need(word.marks, kind, f"{why} {where}, as a positional parameter")
                    self.use(word.names, kind, f"{why} {where}, as a positional parameter")
            else:
                self.use({name}, kind, f"{why} {where}")
        for kind, why in child.unsure:
            for word in positional:
                self.need(word.marks, kind, f"{why} {where}")


def _variable(name: str) -> str:
    return "the positional parameters ($1 ...)" if name == "@" else f"variable '{name}'"
