"""What each simple command does with the values in its words (for ``shell_flow.Facts``).

A ``Command`` reads one simple command by what it is: assignments, ``for``, ``[[ ]]`` and
``test``, the builtins that take variable names (``read``, ``printf -v``, ``declare`` ...),
``let``, and the programs that parse some of their arguments as shell code again (``eval``,
``trap``, ``sh -c``, ``su -c``, ``ssh host cmd``, ``sudo -s``, ``watch``, a shell reading a
pipe). It reports flows, needs and uses to the facts it was given.
"""

from __future__ import annotations

from typing import Protocol

from .shell_words import (
    ARITH_NAME_RE,
    INERT,
    NAME,
    NUMBER,
    OPERAND,
    RESERVED_PREFIX,
    SUBSCRIPT,
    Expansion,
    Sink,
    Word,
    is_mark,
    keyword,
)

SHELLS = frozenset({"sh", "bash", "dash", "ash", "ksh", "ksh93", "mksh", "pdksh", "zsh", "yash"})
WRAPPERS = frozenset(
    {"sudo", "doas", "env", "nohup", "nice", "ionice", "setsid", "stdbuf", "exec", "command",
     "builtin", "time", "timeout", "xargs", "unbuffer", "chronic", "--"}
)  # fmt: skip
ARITH_TESTS = frozenset({"-eq", "-ne", "-lt", "-le", "-gt", "-ge"})
DECLARE = frozenset({"declare", "typeset", "local", "export", "readonly"})


class Flow(Sink, Protocol):
    """What a command reports to: ``shell_flow.Facts``."""

    copies: dict[str, set[str]]
    unknown: dict[str, str]
    readers: dict[int, str]
    calls: list[tuple[str, list[Word]]]

    def flow(self, name: str, value: Word, *, arithmetic_names: bool = True) -> None: ...
    def inner_text(self, word: Word) -> str: ...
    def again(self, text: str) -> None: ...
    def nested(self, text: str, positional: list[Word], where: str) -> None: ...


class Command:
    """One simple command: what its words do to values, by what the command is."""

    def __init__(self, facts: Flow, words: list[Word], pipeline: int) -> None:
        self.facts = facts
        self.words = words
        self.pipeline = pipeline

    def analyse(self) -> None:
        if any(w.role == "arith" for w in self.words):
            return  # ((...)) and for ((...)): the lexer saw the arithmetic
        args = [w for w in self.words if w.role == "arg"]
        while args and keyword(args[0]) in RESERVED_PREFIX:
            args = args[1:]
        head = keyword(args[0]) if args else None
        if head in ("for", "select") and len(args) > 1:
            self._for(args[1:])
        elif head == "function" and len(args) > 1 and args[1].literal():
            self.facts.function(args[1].literal() or "")
        elif head == "[[":
            self._cond(args[1:])
        elif args:
            while args and args[0].assign is not None:
                self._assign(args[0])
                args = args[1:]
            if args:
                self._run(args)

    # ------------------------------------------------------------------ helpers

    def _assign(self, word: Word, name_part: Word | None = None) -> str:
        """``NAME=value``: the value flows into NAME; returns NAME ("*" if unknown)."""
        assert word.assign is not None
        lvalue = name_part or word.part(0, word.assign)
        name = (lvalue.literal() or "*").split("[")[0].rstrip("=+") or "*"
        self.facts.flow(name, word.part(word.assign))
        return name

    def _name(self, word: Word, why: str) -> str:
        """A word used as a variable name: plain identifier, subscript evaluated."""
        text = word.text()
        bracket = text.find("[")
        head = word.part(0, bracket) if bracket >= 0 else word
        self.facts.need(head.marks, NAME, why)
        self.facts.use(head.names, NAME, why)
        if bracket >= 0:
            self._arith(word.part(bracket), SUBSCRIPT)
        return head.literal() or "*"

    def _arith(self, word: Word, why: str) -> None:
        """A word the shell evaluates as an arithmetic expression."""
        self.facts.need(word.marks, NUMBER, why)
        self.facts.use(word.names | set(ARITH_NAME_RE.findall(word.text())), NUMBER, why)

    def _reparse(self, words: list[Word], why: str, positional: list[Word] | None = None) -> None:
        """Words whose text a shell parses again as commands."""
        facts = self.facts
        for word in words:
            facts.need(word.marks, INERT, why)
            facts.use(word.names, INERT, why)
        text = " ".join(facts.inner_text(word) for word in words)
        if positional is None:  # the same shell: eval, trap
            facts.again(text)
        else:
            facts.nested(text, positional, why)

    @staticmethod
    def _options(args: list[Word], with_argument: str) -> tuple[list[Word], dict[str, Word]]:
        """Split ``-x``/``-xVALUE`` options from operands; ``with_argument`` take a value."""
        values: dict[str, Word] = {}
        k = 0
        while k < len(args):
            text = args[k].literal()
            if text == "--":
                k += 1
                break
            if not text or text[0] != "-" or text == "-":
                break
            for pos, flag in enumerate(text[1:], start=1):
                if flag in with_argument:
                    if pos + 1 < len(text):
                        values[flag] = args[k].part(pos + 1)
                    elif k + 1 < len(args):
                        k += 1
                        values[flag] = args[k]
                    break
                values.setdefault(flag, Word())
            k += 1
        return args[k:], values

    # ------------------------------------------------------------------ commands

    def _for(self, args: list[Word]) -> None:
        name = args[0].literal() or "*"
        values = args[2:] if len(args) > 1 and args[1].literal() == "in" else []
        for value in values:
            self.facts.flow(name, value)
        if len(args) == 1 or args[1].literal() != "in":
            self.facts.copies[name].add("@")  # for NAME; do: over "$@"

    def _test(self, args: list[Word], *, cond: bool) -> None:
        literals = [w.literal() for w in args]
        tool = "[[ ... ]]" if cond else "test"  # ksh's and zsh's test -eq evaluate, too
        for k, text in enumerate(literals):
            if text in ARITH_TESTS:
                for side in (k - 1, k + 1):
                    if 0 <= side < len(args) and literals[side] not in ("]]", "&&", "||"):
                        self._arith(args[side], f"as an operand of {text} in {tool}")
            elif text in ("-v", "-R") and k + 1 < len(args):
                self._name(args[k + 1], f"as the variable name tested by {text} in {tool}")
            elif cond and text == "=~":
                for word in args:
                    self.facts.flow("BASH_REMATCH", word)

    def _cond(self, args: list[Word]) -> None:
        """bash reads ``[[ ... ]]`` as one test; sh has no ``[[`` and reads the ``&& || | &
        ( )`` and newlines in it as separators, so each piece after one is a command too."""
        self._test([w for w in args if keyword(w) != "\n"], cond=True)
        pieces: list[list[Word]] = [[]]
        for word in args:
            if keyword(word) in _COND_BREAKS:
                pieces.append([])
            else:
                pieces[-1].append(word)
        for piece in pieces[1:]:  # the first is the arguments of a command named [[
            if piece:
                Command(self.facts, piece, self.pipeline).analyse()

    def _test_builtin(self, args: list[Word], tool: str) -> None:
        self._test(args, cond=False)

    def _run(self, args: list[Word]) -> None:
        split = {n for item, quoted in zip(args[0].items, args[0].quoted, strict=True)
                 if isinstance(item, Expansion) and not quoted for n in item.names}  # fmt: skip
        why = "unquoted as the command name, where it is split into a command line"
        self.facts.use(split, INERT, why)  # n=${x}; $n would run "eval ..." from the value
        name = args[0].literal()
        if name is None:  # "$e"val: an expansion may be empty, leaving the plain text
            plain = "".join(i for i in args[0].items if isinstance(i, str) and not is_mark(i))
            name = plain if plain in _BUILTINS or plain in SHELLS else None
        if name in ("command", "builtin", "exec"):
            rest, _ = self._options(args[1:], "a")
            if rest:
                self._run(rest)
            return
        handler = _BUILTINS.get(name or "")
        if handler is not None:
            handler(self, args[1:], name or "")
            return
        if name:
            self.facts.calls.append((name, args[1:]))
        self._nested(args)

    def _declare(self, args: list[Word], tool: str) -> None:
        operands, flags = self._options(args, "")
        for word in operands:
            assign = word.assign
            if assign is None and "=" in word.items:
                assign = word.items.index("=") + 1
                word = Word(word.items, word.quoted, word.role, assign)
            if assign is None:
                self._name(word, f"as a variable name given to {tool}")
                continue
            head = word.part(
                0, assign - (2 if word.items[assign - 2 : assign] == ["+", "="] else 1)
            )
            target = self._name(head, f"as a variable name given to {tool}")
            self._assign(word, head)
            value = word.part(assign)
            if "i" in flags:
                self.facts.use({target}, NUMBER, f"assigned to an integer variable ({tool} -i)")
            if "n" in flags:
                self._name(value, f"as the target of a name reference ({tool} -n)")
                self.facts.copies[target].add(value.literal() or "*")
                self.facts.copies[value.literal() or "*"].add(target)

    def _let(self, args: list[Word], tool: str) -> None:
        for word in args:
            self._arith(word, "as an argument of let")

    def _read(self, args: list[Word], tool: str) -> None:
        with_argument = {"read": "adinNptu", "mapfile": "dnOsuCc", "readarray": "dnOsuCc"}[tool]
        operands, options = self._options(args, with_argument)
        if "C" in options and tool != "read":
            self._reparse([options["C"]], f"as the callback of {tool} -C", [])
        targets = operands[-1:] if tool != "read" else operands
        if "a" in options and tool == "read":
            targets = [options["a"]]
        for word in targets:
            self.facts.unknown[self._name(word, f"as a variable name given to {tool}")] = tool
        if not targets:
            self.facts.unknown["REPLY" if tool == "read" else "MAPFILE"] = tool

    def _getopts(self, args: list[Word], tool: str) -> None:
        if len(args) > 1:
            self.facts.unknown[self._name(args[1], "as the variable name given to getopts")] = tool
        self.facts.unknown["OPTARG"] = tool

    def _printf(self, args: list[Word], tool: str) -> None:
        if args:  # as -v, a value would make the next word a variable name
            self._not_option(args[:1], tool)
        if len(args) > 1 and args[0].literal() == "-v":
            target = self._name(args[1], "as the variable name given to printf -v")
            for word in args[2:]:
                self.facts.flow(target, word)

    def _unset(self, args: list[Word], tool: str) -> None:
        operands, flags = self._options(args, "")
        if "f" not in flags:
            for word in operands:
                self._name(word, f"as a variable name given to {tool}")

    def _wait(self, args: list[Word], tool: str) -> None:
        _, options = self._options(args, "p")
        if "p" in options:
            self._name(options["p"], "as the variable name given to wait -p")

    def _eval(self, args: list[Word], tool: str) -> None:
        self._reparse(args, "in the arguments of eval, which runs them as commands")

    def _trap(self, args: list[Word], tool: str) -> None:
        operands, flags = self._options(args, "")
        if operands and not {"p", "l"} & set(flags):
            self._not_option(operands[:1], tool)  # as --, it would make the next one the action
            self._reparse(operands[:1], "in the action of trap, which runs it as commands")

    def _alias(self, args: list[Word], tool: str) -> None:
        for word in args:
            self.facts.need(word.marks, INERT, "in an alias, whose text the shell parses again")
            self.facts.use(word.names, INERT, "in an alias, whose text the shell parses again")

    def _source(self, args: list[Word], tool: str) -> None:
        for word in args:
            self.facts.need(word.marks, INERT, f"in what '{tool}' reads and runs as commands")
            self.facts.use(word.names, INERT, f"in what '{tool}' reads and runs as commands")

    def _set(self, args: list[Word], tool: str) -> None:
        k = 0
        while k < len(args):
            text = args[k].literal() or ""
            if text == "--":
                k += 1
                break
            if not text or text[0] not in "-+":
                break
            k += 2 if text in ("-o", "+o") else 1
        for word in args[k:]:
            self.facts.flow("@", word, arithmetic_names=False)

    def _not_option(self, words: list[Word], tool: str) -> None:
        """Values where ``tool`` reads options: one starting with - could be -c, -s, -v ..."""
        why = f"where {tool} reads its options"
        for word in words:
            first = word.items[0] if word.items else None  # what the word starts with
            if isinstance(first, Expansion):
                self.facts.need(first.marks, OPERAND, why)
                self.facts.use(first.names, OPERAND, why)
            elif first is not None and is_mark(first):
                self.facts.need({first}, OPERAND, why)

    def _option_words(self, args: list[Word]) -> list[Word]:
        """The words up to the first plain operand: where options are read."""
        for k, word in enumerate(args):
            text = word.literal()
            if text is not None and not text.startswith(("-", "+")):
                return args[:k]
        return args

    # ------------------------------------------------------------------ nested shells

    def _nested(self, args: list[Word]) -> None:
        """Find a program that parses some of the arguments as shell code."""
        replace = False
        for k, word in enumerate(args):
            text = word.literal()
            base = text.rsplit("/", 1)[-1] if text else None
            rest = args[k + 1 :]
            start = k == 0 or (args[k - 1].literal() or "").rsplit("/", 1)[-1] in WRAPPERS
            if base in SHELLS and (start or _c_option(rest) or not _operands(rest)):
                self._shell(rest, base, stdin_allowed=start or not _operands(rest), replace=replace)
                return
            if k == 0 and text is None and _c_option(rest):
                self._shell(rest, "a shell", stdin_allowed=False, replace=replace)
                return
            if base in _OPTION_SENSITIVE:
                self._not_option(self._option_words(rest), base)
            if base in ("su", "runuser"):
                return self._su(rest, base)
            if base == "ssh":
                return self._ssh(rest)
            if base == "env" and any(
                (w.literal() or "").startswith(("-S", "--split")) for w in rest
            ):
                operands, _ = self._options(rest, "uCS")
                return self._reparse(operands, "in the command of env -S", [])
            if base in ("sudo", "doas") and any(w.literal() in _SUDO_SHELL for w in rest):
                operands, _ = self._options(rest, "ugCDhprtUTR")
                return self._reparse(operands, f"in the command of {base} -s", [])
            if base == "watch":
                operands, flags = self._options(rest, "nqd")
                if "x" not in flags:
                    return self._reparse(operands, "in the command of watch", [])
            if base in ("flock", "script"):
                for j, option in enumerate(rest[:-1]):
                    if option.literal() in ("-c", "--command"):
                        return self._reparse([rest[j + 1]], f"in the command of {base} -c", [])
            if base == "parallel":
                self.facts.readers[self.pipeline] = "in what GNU parallel runs as commands"
                return self._reparse(rest, "in what GNU parallel runs as commands", [])
            if base == "xargs":
                replace = any(
                    (w.literal() or "").startswith(("-I", "-i", "--replace")) for w in rest
                )

    def _shell(self, args: list[Word], name: str, *, stdin_allowed: bool, replace: bool) -> None:
        k, command_mode, stdin = 0, False, False
        self._not_option(args[:1], name)  # sh ${x} ${y}: as -c, x would make y the script
        while k < len(args):
            text = args[k].literal()
            if not text or text[0] not in "-+" or text in ("-", "--"):
                k += text in ("-", "--")
                break
            if text.startswith("--"):
                k += 2 if text in ("--rcfile", "--init-file") else 1
                continue
            command_mode = command_mode or "c" in text[1:]
            stdin = stdin or "s" in text[1:]
            k += 2 if ("o" in text[1:] or "O" in text[1:]) else 1
        operands = args[k:]
        if replace:
            why = f"in the input of xargs, which puts it into the script of '{name}'"
            self.facts.readers[self.pipeline] = why
        if command_mode and operands:
            self._reparse(operands[:1], f"in the script of '{name} -c'", operands[1:])
        elif operands and not stdin:
            why = f"in the script file run by '{name}'"
            self.facts.need(operands[0].marks, INERT, why)
        elif stdin_allowed:
            why = f"in what is piped into '{name}', which runs it as commands"
            self.facts.readers[self.pipeline] = why

    def _su(self, args: list[Word], base: str) -> None:
        for k, word in enumerate(args):
            text = word.literal() or ""
            if text in ("-c", "--command", "--session-command") and k + 1 < len(args):
                self._reparse([args[k + 1]], f"in the command of {base} -c", [])
            elif word.text().startswith("--command="):
                self._reparse([word.part(len("--command="))], f"in the command of {base}", [])

    def _ssh(self, args: list[Word]) -> None:
        operands, _ = self._options(args, "BbcDEeFIiJLlmOoPpQRSWw")
        self._not_option(operands[:1], "ssh")  # as the host: -oProxyCommand=... runs a program
        if len(operands) > 1:
            self._reparse(operands[1:], "in the remote command of ssh", [])


_SUDO_SHELL = ("-s", "-i", "--shell", "--login")
_OPTION_SENSITIVE = frozenset({"su", "runuser", "sudo", "doas", "env", "flock", "script", "watch"})
_COND_BREAKS = frozenset({"&&", "||", "|", "&", "(", ")", ";", "\n"})


def _c_option(args: list[Word]) -> bool:
    """``-c`` (or a cluster with c, like ``-ec``) among the leading options."""
    skip = False
    for word in args:
        text = word.literal() or ""
        if skip:
            skip = False
            continue
        if not text.startswith(("-", "+")) or text in ("-", "--"):
            return False
        if not text.startswith("--") and "c" in text[1:]:
            return True
        skip = text in ("-o", "+o", "-O", "+O", "--rcfile", "--init-file")
    return False


def _operands(args: list[Word]) -> list[Word]:
    return [w for w in args if not (w.literal() or "x").startswith(("-", "+"))]


_BUILTINS = {
    **dict.fromkeys(DECLARE, Command._declare),
    "let": Command._let,
    "read": Command._read,
    "mapfile": Command._read,
    "readarray": Command._read,
    "getopts": Command._getopts,
    "printf": Command._printf,
    "unset": Command._unset,
    "wait": Command._wait,
    "eval": Command._eval,
    "trap": Command._trap,
    "alias": Command._alias,
    "source": Command._source,
    ".": Command._source,
    "set": Command._set,
    "test": Command._test_builtin,
    "[": Command._test_builtin,
}
