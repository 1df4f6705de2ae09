"""Every PowerShell text the project ships or generates, held to Microsoft's facts.

`check(text, context=...)` parses a script with the real grammar (console.powershell.syntax) and
reports, as `Finding`s:

- `syntax`: the grammar could not parse it (ERROR or MISSING nodes);
- `unknown-command`: neither in the facts nor defined (aliases, abbreviations and external
  programs count as unknown: what they resolve to depends on the session);
- `parameter-binding`: named parameters, positional arguments and pipeline input that bind no
  single parameter set in some target of the command (Windows PowerShell 5.1, PowerShell 7.4,
  Hyper-V of Windows Server 2019/2022/2025); `splatting`: a call whose parameters cannot be known;
- `jea-unreachable` (JEA functions): a command the generated session cannot load;
- `type` (ConstrainedLanguage): a type outside its core types, also through New-Object;
- `dynamic-code`: Invoke-Expression, [scriptblock]::Create, Add-Type, `&`/`.` on anything but a
  literal script block or a command name, jobs (-AsJob, *-Job: they run outside the session);
- `culture`: formatting or parsing that follows the session's culture, which a PSRP client sets.

Generated data files (.psd1/.psrc/.pssc) are read by PowerShell's own string rule, which the
grammar does not know: any of the five single quotes ends a literal. `literals`, `decode_single_quoted`
and `check_data` hold each generated literal to the value it was generated from (rule `literal`).
"""
from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import cache, lru_cache
from typing import Any, Literal, NamedTuple

from . import facts, syntax
from .syntax import Node

Kind = Literal["script", "jea_function", "registration"]


@dataclass(frozen=True)
class Finding:
    line: int  # 1-based
    column: int  # 1-based, in characters
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.line}:{self.column}: {self.rule}: {self.message}"

    def moved(self, line: int, column: int) -> Finding:
        """The finding of a text that starts at (line, column) of a larger one."""
        return replace(self, line=self.line + line - 1,
                       column=self.column + (column - 1 if self.line == 1 else 0))


@dataclass(frozen=True)
class Context:
    kind: Kind
    constrained: bool  # runs in ConstrainedLanguage (WDAC/AppLocker hosts, JEA functions there)
    modules_to_import: tuple[str, ...] = ()  # the .psrc's ModulesToImport (jea_function)
    defined: frozenset[str] = frozenset()  # functions defined elsewhere (the .psrc's others)
    externals: frozenset[str] = frozenset()  # external programs allowed, e.g. {"icacls.exe"}


# --- positions ---------------------------------------------------------------------------------------

class _Lines:
    """Line and character column of byte offsets (tree-sitter) and character offsets (lexer);
    lines end at \\n, as tree-sitter counts rows."""

    def __init__(self, text: str) -> None:
        self.starts = [0] + [m.end() for m in re.finditer("\n", text)]
        self._bytes = text.encode("utf-8").split(b"\n")

    def of_node(self, node: Node) -> tuple[int, int]:
        row, byte_col = node.start_point
        line = self._bytes[row] if row < len(self._bytes) else b""
        return row + 1, len(line[:byte_col].decode("utf-8", errors="replace")) + 1

    def of_offset(self, offset: int) -> tuple[int, int]:
        row = bisect.bisect_right(self.starts, offset) - 1
        return row + 1, offset - self.starts[row] + 1


def position(text: str, offset: int) -> tuple[int, int]:
    """(line, column), 1-based, of a character offset into `text`."""
    return _Lines(text).of_offset(offset)


# --- the checker -------------------------------------------------------------------------------------

_DASHES = "-\u2013\u2014\u2015"  # PowerShell takes en dash, em dash and horizontal bar for '-'
_REDIRECTION = re.compile(r"^[1-6*]?>>?(&[1-6])?")  # `2>$null` written without a space
_DYNAMIC_COMMANDS = {"invoke-expression", "add-type"}
_JOB = re.compile(r"-(thread)?job$", re.IGNORECASE)  # Start-Job, Receive-Job, Start-ThreadJob, ...
_DATE_TYPES = {"datetime", "system.datetime", "datetimeoffset", "system.datetimeoffset"}
_NUMBER_TYPES = {"double", "system.double", "single", "system.single", "float", "decimal",
                 "system.decimal"}
# $ExecutionContext.InvokeCommand's ways to run text as code.
_INVOKE_COMMAND_METHODS = {"newscriptblock", "invokescript", "expandstring"}


def check(text: str, *, context: Context) -> list[Finding]:
    """The findings of one PowerShell script (a function body, an operation, the registration)."""
    return list(_check(text, context))


@lru_cache(maxsize=256)
def _check(text: str, context: Context) -> tuple[Finding, ...]:
    # Cached: every host's role capability holds the same function texts.
    return tuple(_Checker(text, context).run())


_WANTED = {"command", "type_literal", "invokation_expression", "verbatim_string_characters",
           "expandable_string_literal", "format_operator", "function_statement"}


def _nodes(root: Node) -> Iterator[Node]:
    """The nodes the rules look at, and every ERROR or MISSING node, in document order (a cursor
    walk: building each node's children list costs more than the rules)."""
    cursor = root.walk()
    while True:
        node = cursor.node
        if node is not None and (node.type in _WANTED or node.is_error or node.is_missing):
            yield node
        if cursor.goto_first_child():
            continue
        while not cursor.goto_next_sibling():
            if not cursor.goto_parent():
                return


class _Checker:
    def __init__(self, text: str, context: Context) -> None:
        self.text = text
        self.context = context
        self.tree = syntax.parse(text)
        self.nodes = list(_nodes(self.tree.root_node))
        self.lines = _Lines(text)
        self.findings: list[Finding] = []
        self.defined = {n.lower() for n in context.defined} | self._functions()
        self.externals = {n.lower() for n in context.externals}

    def run(self) -> list[Finding]:
        for node in self.nodes:
            kind = node.type
            if node.is_error or node.is_missing:
                self._syntax(node)
            elif kind == "command":
                self._command(node)
            elif kind == "type_literal":
                self._type_literal(node)
            elif kind == "invokation_expression":
                self._invocation(node)
            elif kind == "verbatim_string_characters":
                self._single_quoted(node)
            elif kind == "expandable_string_literal":
                self._double_quoted(node)
            elif kind == "format_operator":
                self._add(node, "culture", "the -f operator formats in the session's culture "
                          "(a PSRP client sets it); format with an explicit culture")
        unique = sorted(set(self.findings), key=lambda f: (f.line, f.column, f.rule, f.message))
        return unique

    # --- helpers ---

    def _add(self, node: Node, rule: str, message: str) -> None:
        line, column = self.lines.of_node(node)
        self.findings.append(Finding(line, column, rule, message))

    def _functions(self) -> set[str]:
        names = set()
        for node in self.nodes:
            if node.type == "function_statement":
                name = _child(node, "function_name")
                if name is not None:
                    names.add(syntax.text_of(name).lower())
        return names

    def _syntax(self, node: Node) -> None:
        parent = node.parent
        while parent is not None:  # one finding per broken region
            if parent.is_error:
                return
            parent = parent.parent
        what = "missing " + node.type if node.is_missing else "cannot parse"
        self._add(node, "syntax", f"{what}: {_short(syntax.text_of(node))!r}")

    # --- strings: the grammar ends them at ASCII quotes only, PowerShell at its curly ones too ---

    def _single_quoted(self, node: Node) -> None:
        raw = syntax.text_of(node)
        try:
            decode_single_quoted(raw)
        except ValueError as error:
            self._add(node, "literal", str(error))

    def _double_quoted(self, node: Node) -> None:
        raw = syntax.text_of(node)
        double = _double()
        curly = double.replace('"', "")
        i = 1
        while i < len(raw) - 1:
            if raw[i] == "`":
                i += 2
                continue
            if raw[i] in curly:
                if raw[i + 1] in double and i + 1 < len(raw) - 1:
                    i += 2
                    continue
                self._add(node, "literal", f"PowerShell ends this string at its {raw[i]!r}: "
                          f"{_short(raw[i + 1:])!r} is read as code")
                return
            i += 1

    # --- commands ---

    def _command(self, node: Node) -> None:
        first = node.children[0] if node.children else None
        if first is None:
            return
        if first.type == "command_invokation_operator":
            target = _child(node, "command_name_expr")
            inner = target.children[0] if target is not None and target.children else None
            operator = syntax.text_of(first)
            if inner is None or inner.type == "script_block_expression":
                return  # `& { ... }`: a literal script block is fixed code
            if inner.type == "path_command_name" and all(
                    c.type == "path_command_name_token" for c in inner.children):
                self._call(node, inner, syntax.text_of(inner))  # `& Get-Thing`: a static name
                return
            self._add(node, "dynamic-code", f"'{operator}' runs {_short(syntax.text_of(inner))!r}, "
                      f"code chosen at run time; call a command by name or a literal script block")
            return
        name_node = _child(node, "command_name")
        if name_node is not None:
            self._call(node, name_node, syntax.text_of(name_node))

    def _call(self, node: Node, name_node: Node, name: str) -> None:
        lowered = name.lower()
        bare = lowered.rsplit("\\", 1)[-1]
        dynamic = bare in _DYNAMIC_COMMANDS or bool(_JOB.search(bare))
        if dynamic:
            self._add(name_node, "dynamic-code", f"{name} runs code outside this script's checks "
                      f"(jobs open an unrestricted runspace)")
        arguments = _Arguments.of(node)
        allowed_external = (lowered in self.externals or bare in self.externals) and \
            lowered not in self.defined and facts.command(name) is None
        # An allowed external program binds nothing: an argument array is only its arguments.
        for splat in [] if allowed_external else arguments.splats:
            self._add(splat, "splatting", f"{name} is called with {syntax.text_of(splat)}: "
                      f"splatted parameters cannot be checked; name each parameter")
        for parameter in arguments.parameter_nodes:
            if "asjob".startswith(_parameter_name(parameter).lower()) and \
                    len(_parameter_name(parameter)) >= 3:
                self._add(parameter, "dynamic-code", f"{name} -AsJob runs the command in a job, "
                          f"outside the session's restrictions")
        if lowered in self.defined and "\\" not in lowered:
            return
        command = facts.command(name)
        if command is None:
            if allowed_external or dynamic:
                return  # a dynamic command is one finding, not two
            self._add(name_node, "unknown-command", _unknown(name))
            return
        self._bind(node, name_node, name, command, arguments)
        if self.context.kind == "jea_function" and not facts.jea_reachable(
                name, self.context.modules_to_import):
            modules = ", ".join(self.context.modules_to_import) or "none"
            self._add(name_node, "jea-unreachable", f"{name} cannot be loaded in the JEA session "
                      f"(module autoloading is off; ModulesToImport: {modules})")
        if _command_is(command, "get-date"):
            for parameter in arguments.parameter_nodes:
                pname = _parameter_name(parameter).lower()
                if pname and ("format".startswith(pname) or "uformat".startswith(pname)):
                    self._add(parameter, "culture", f"Get-Date -{_parameter_name(parameter)} formats "
                              f"in the session's culture (a PSRP client sets it: under th-TH or "
                              f"ar-SA the year differs); compare dates, or format with "
                              f".ToString(format, [cultureinfo]::InvariantCulture)")
        if self.context.kind == "jea_function" and "\\" not in name and \
                name.lower() in {p.lower() for p in facts.jea_restricted_proxies()}:
            self._add(name_node, "jea-unreachable", f"{name} is the JEA session's restricted proxy, "
                      f"not the cmdlet: call {command.module}\\{command.name}")
        if self.context.constrained and _command_is(command, "new-object"):
            self._new_object(node, name, command, arguments)

    def _bind(self, node: Node, name_node: Node, name: str, command: facts.CommandFacts,
              arguments: _Arguments) -> None:
        if arguments.splats:
            return  # reported as splatting: what binds is unknown
        pipeline = _receives_pipeline(node)
        # One finding per error id, naming every target that gives it (messages may name the
        # target: the first is shown).
        failures: dict[str, list[tuple[str, str]]] = {}
        for target in _targets(command):
            named, positional = arguments.resolve(command, target)
            error = _bind_error(name, tuple(named), positional, pipeline, target)
            if error is not None:
                failures.setdefault(error[0], []).append((target, error[1]))
        for fqid, failed in failures.items():
            targets = [target for target, _message in failed]
            message = failed[0][1]
            written = " ".join(f"-{n}" for n in arguments.written_names()) or "no named parameters"
            extra = []
            if arguments.positional_count(command, targets[0]):
                extra.append(f"{arguments.positional_count(command, targets[0])} positional")
            if pipeline:
                extra.append("pipeline input")
            called = written + (f" ({', '.join(extra)})" if extra else "")
            self._add(name_node, "parameter-binding",
                      f"{name} {called}: {fqid} on {', '.join(targets)}: {message}")

    def _new_object(self, node: Node, name: str, command: facts.CommandFacts,
                    arguments: _Arguments) -> None:
        target = _targets(command)[0]
        for parameter, value in arguments.named_values(command, target):
            pname = parameter.lower()
            if pname and "comobject".startswith(pname) and len(pname) >= 2:
                self._add(node, "type", f"{name} -ComObject: COM objects are refused in "
                          f"ConstrainedLanguage")
                return
            if pname and "typename".startswith(pname):
                self._type_name_argument(node, name, value)
                return
        positional = arguments.positional_nodes(command, target)
        if positional:
            self._type_name_argument(node, name, positional[0])

    def _type_name_argument(self, node: Node, name: str, value: Node | None) -> None:
        text = _literal_text(value)
        if text is None:
            self._add(node, "type", f"{name} with a type name known only at run time cannot be "
                      f"checked against ConstrainedLanguage's core types")
        elif _type_key(text) not in facts.core_types():
            self._add(value or node, "type", f"{name} {text}: not a core type, refused in "
                      f"ConstrainedLanguage (WDAC/AppLocker hosts)")

    # --- types ---

    def _type_literal(self, node: Node) -> None:
        # Casts, `[X]::Member`, `-as [X]` and a param block's `[X]$p` (converted like a cast);
        # `[Parameter(...)]` is an attribute, another node.
        spec = _child(node, "type_spec")
        if spec is None:
            return
        if self.context.constrained:
            for type_name in _type_names(spec):
                if _type_key(type_name) not in facts.core_types():
                    self._add(node, "type", f"[{type_name}] is not a core type: refused in "
                              f"ConstrainedLanguage (WDAC/AppLocker hosts)")

    # --- member invocations ---

    def _invocation(self, node: Node) -> None:
        members = [c for c in node.children if c.type == "member_name"]
        arguments = _child(node, "argument_list")
        if not members or arguments is None:
            return
        member = syntax.text_of(members[-1]).lower()
        count = _argument_count(arguments)
        target = node.children[0]
        static = any(c.type == "::" for c in node.children)
        type_name = ""
        if static and target.type == "type_literal":
            spec = _child(target, "type_spec")
            type_name = _type_key(syntax.text_of(spec)) if spec is not None else ""
        if static and type_name in {"scriptblock", "system.management.automation.scriptblock"} \
                and member == "create":
            self._add(members[-1], "dynamic-code", "[scriptblock]::Create turns text into code")
        elif not static and member in _INVOKE_COMMAND_METHODS and \
                "invokecommand" in syntax.text_of(target).lower():
            self._add(members[-1], "dynamic-code", f"$ExecutionContext.InvokeCommand."
                      f"{syntax.text_of(members[-1])} turns text into code")
        elif static and type_name in _DATE_TYPES | _NUMBER_TYPES:
            if (member == "parse" and count == 1) or (member == "tryparse" and count == 2) \
                    or (member in ("parseexact", "tryparseexact") and count < 3):
                self._add(members[-1], "culture", f"[{type_name}]::{syntax.text_of(members[-1])} without "
                          f"a format provider reads in the session's culture; pass "
                          f"[cultureinfo]::InvariantCulture")
        elif not static and member == "tostring" and count == 1:
            argument = _arguments(arguments)[0]
            if _is_string(argument):
                self._add(members[-1], "culture", f".ToString({_short(syntax.text_of(argument))}) formats "
                          f"in the session's culture; pass [cultureinfo]::InvariantCulture too")


# --- arguments of a command ----------------------------------------------------------------------------

@dataclass
class _Arguments:
    """A command's elements as the binder sees them: `-Name`, `-Name:value`, `-Name value`
    (when the parameter takes a value), positional arguments and splats."""

    elements: list[tuple[Node, Node | None, bool]] = field(default_factory=list)
    # (node, value attached with ':' or None, is_parameter)
    splats: list[Node] = field(default_factory=list)

    @classmethod
    def of(cls, command: Node) -> _Arguments:
        out = cls()
        elements = _child(command, "command_elements")
        if elements is None:
            return out
        children = elements.children
        i = 0
        while i < len(children):
            child = children[i]
            if child.type == "command_argument_sep" or child.type == "redirection" or (
                    child.type == "generic_token" and _REDIRECTION.match(syntax.text_of(child))):
                i += 1
                continue
            if child.type == "command_parameter":
                value = None
                if i + 2 < len(children) and children[i + 1].type == "command_argument_sep" \
                        and syntax.text_of(children[i + 1]).strip() == ":":
                    value = children[i + 2]
                    i += 2
                out.elements.append((child, value, True))
            elif _is_splat(child):
                out.splats.append(child)
            else:
                out.elements.append((child, None, False))
            i += 1
        return out

    @property
    def parameter_nodes(self) -> list[Node]:
        return [node for node, _value, is_parameter in self.elements if is_parameter]

    def positional_nodes(self, command: facts.CommandFacts, target: str) -> list[Node]:
        return self._split(command, target)[1]

    def written_names(self) -> list[str]:
        return [_parameter_name(node) for node in self.parameter_nodes]

    def named_values(self, command: facts.CommandFacts, target: str
                     ) -> list[tuple[str, Node | None]]:
        return self._split(command, target)[0]

    def resolve(self, command: facts.CommandFacts, target: str) -> tuple[list[str], int]:
        named, positional = self._split(command, target)
        return [n for n, _v in named], len(positional)

    def positional_count(self, command: facts.CommandFacts, target: str) -> int:
        return len(self._split(command, target)[1])

    def _split(self, command: facts.CommandFacts, target: str
               ) -> tuple[list[tuple[str, Node | None]], list[Node]]:
        """Named parameters with their values, and positional arguments: a parameter takes the
        next element as its value unless it is a switch (known from the facts of `target`) or
        the next element is a parameter itself."""
        named: list[tuple[str, Node | None]] = []
        positional: list[Node] = []
        i = 0
        while i < len(self.elements):
            node, value, is_parameter = self.elements[i]
            if not is_parameter:
                positional.append(node)
                i += 1
                continue
            name = _parameter_name(node)
            if value is None and i + 1 < len(self.elements) and not self.elements[i + 1][2] \
                    and not _is_switch(command, name, target):
                value = self.elements[i + 1][0]
                i += 1
            named.append((name, value))
            i += 1
        return named, positional


@lru_cache(maxsize=4096)
def _bind_error(name: str, named: tuple[str, ...], positional: int, pipeline: bool,
                target: str) -> tuple[str, str] | None:
    """facts.bind's (error id, message) for one call shape, or None when it binds."""
    try:
        facts.bind(name, named, positional, pipeline, target)
    except facts.BindingError as error:
        return error.fqid, str(error.message)
    return None


def _is_switch(command: facts.CommandFacts, written: str, target: str) -> bool:
    """Whether `-written` names a switch in `target`, matched as the binder matches (exact name,
    exact alias, else the one name or alias it starts); unresolved names are left to bind()."""
    facts_of = command.targets[target]
    own = [p for parameters in facts_of.sets.values() for p in parameters.values()]
    common = list(facts.common_parameters(facts_of.engine).values()) if facts_of.common_parameters \
        else []
    key = written.lower()
    for parameter in own + common:
        if parameter.name.lower() == key or key in (a.lower() for a in parameter.aliases):
            return parameter.switch
    matches = {p.name.lower(): p for p in own + common
               if p.name.lower().startswith(key) or any(a.lower().startswith(key) for a in p.aliases)}
    if len(matches) > 1:
        mine = {k: p for k, p in matches.items() if any(k == o.name.lower() for o in own)}
        matches = mine if len(mine) == 1 else matches
    return len(matches) == 1 and next(iter(matches.values())).switch


def _targets(command: facts.CommandFacts) -> Sequence[str]:
    return tuple(command.targets)


def _command_is(command: facts.CommandFacts, name: str) -> bool:
    return command.name.lower() == name


# --- small node helpers ----------------------------------------------------------------------------------

def _child(node: Node, kind: str) -> Node | None:
    for child in node.children:
        if child.type == kind:
            return child
    return None


def _short(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _unknown(name: str) -> str:
    if "\\" in name or "/" in name or "." in name.rsplit("\\", 1)[-1]:
        return f"{name} is not a command in the facts: external programs and scripts are refused here"
    return (f"{name} is not a command in the facts nor a function defined here (write full "
            f"command names: aliases and abbreviations depend on the session)")


def _parameter_name(node: Node) -> str:
    return syntax.text_of(node).lstrip(_DASHES).rstrip(":")


def _is_splat(node: Node) -> bool:
    """`@name` as an argument (a hashtable literal `@{...}` is an ordinary argument)."""
    current: Node | None = node
    while current is not None and current.type != "variable":
        current = current.named_children[0] if current.named_child_count == 1 else None
    return current is not None and syntax.text_of(current).startswith("@")


def _receives_pipeline(command: Node) -> bool:
    """Whether a `|` precedes the command in its pipeline (it is not the first element)."""
    sibling = command.prev_sibling
    while sibling is not None and sibling.type in ("comment",):
        sibling = sibling.prev_sibling
    return sibling is not None and sibling.type == "|"


def _type_names(spec: Node) -> list[str]:
    """`[X]` -> X, `[X[]]` -> X, `[X[Y,Z]]` -> X`2 ... as names PowerShell resolves: the generic
    type and each argument are checked alike."""
    kind = spec.type
    if kind == "type_spec":
        inner = spec.children[0] if spec.children else None
        return _type_names(inner) if inner is not None else []
    if kind == "array_type_name":
        inner = _child(spec, "type_name")
        return _type_names(inner) if inner is not None else []
    if kind == "generic_type_name":
        out: list[str] = []
        inner = _child(spec, "type_name")
        if inner is not None:
            out.extend(_type_names(inner))
        arguments = _child(spec, "generic_type_arguments")
        if arguments is not None:
            for argument in arguments.children:
                if argument.type == "type_spec":
                    out.extend(_type_names(argument))
        return out
    return ["".join(syntax.text_of(spec).split())]


def _type_key(name: str) -> str:
    name = "".join(name.split()).lower()
    return name[:-2] if name.endswith("[]") else name


def _arguments(argument_list: Node) -> list[Node]:
    expressions = _child(argument_list, "argument_expression_list")
    if expressions is None:
        return []
    return [c for c in expressions.children if c.type == "argument_expression"]


def _argument_count(argument_list: Node) -> int:
    return len(_arguments(argument_list))


def _is_string(node: Node) -> bool:
    """A string literal, however deep the expression wrappers go."""
    current = node
    while current.type not in ("string_literal", "expandable_string_literal",
                               "verbatim_string_characters", "expandable_here_string_literal",
                               "verbatim_here_string_characters"):
        if current.named_child_count != 1:
            return False
        current = current.named_children[0]
    return True


def _literal_text(node: Node | None) -> str | None:
    """The text of a bare word or a quoted string without expansion, else None."""
    current = node
    while current is not None:
        if current.type == "generic_token":
            return syntax.text_of(current)
        if current.type == "verbatim_string_characters":
            raw = syntax.text_of(current)
            try:
                return decode_single_quoted(raw)
            except ValueError:
                return None
        if current.type == "expandable_string_literal":
            raw = syntax.text_of(current)
            return raw[1:-1] if "$" not in raw and "`" not in raw else None
        if current.named_child_count != 1:
            return None
        current = current.named_children[0]
    return None


# --- data files: PowerShell's string rule ---------------------------------------------------------------

class Token(NamedTuple):
    """A token of PowerShell text as PowerShell's tokenizer splits it (only what data files and
    the code in their script blocks need): a single-quoted literal (`value` decoded), an
    expandable string, a comment, a newline, punctuation or a word. A tuple: files have many."""

    kind: str  # literal | string | comment | newline | punct | word
    start: int
    end: int
    value: str
    error: str = ""
    nested: tuple[Token, ...] = ()  # literals inside `$( )` of an expandable string


@cache
def _single() -> str:
    return "".join(sorted(facts.single_quotes()))


@cache
def _double() -> str:
    return "".join(sorted(facts.double_quotes()))


def decode_single_quoted(token_text: str) -> str:
    """The value PowerShell reads from a single-quoted literal: any of ' U+2018 U+2019 U+201A
    U+201B opens and ends it, and a quote followed by a quote is one quote, the second one
    (tokenizer.cs ScanStringLiteral). ValueError when `token_text` is not exactly one literal."""
    quotes = _single()
    if not token_text or token_text[0] not in quotes:
        raise ValueError(f"{_short(token_text)!r} does not start with a single quote")
    value, end = _scan_single(token_text, 0, quotes)
    if end < 0:
        raise ValueError(f"{_short(token_text)!r} is not terminated: PowerShell reads on to the "
                         f"end of the text")
    if end != len(token_text):
        raise ValueError(f"PowerShell ends this literal after {token_text[:end]!r}; "
                         f"{_short(token_text[end:])!r} is read as code")
    return value


def _scan_single(text: str, start: int, quotes: str, stop: int | None = None) -> tuple[str, int]:
    """The value of the literal opening at `start`, and the offset after it (-1: unterminated)."""
    stop = len(text) if stop is None else stop
    find = _quote_pattern(quotes)
    out: list[str] = []
    i = start + 1
    while True:
        match = find.search(text, i, stop)
        if match is None:
            out.append(text[i:stop])
            return "".join(out), -1
        j = match.start()
        out.append(text[i:j])
        if j + 1 < stop and text[j + 1] in quotes:
            out.append(text[j + 1])  # the second quote is kept
            i = j + 2
            continue
        return "".join(out), j + 1


@cache
def _quote_pattern(chars: str) -> re.Pattern[str]:
    return re.compile("[" + re.escape(chars) + "]")


@cache
def _lexer() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """(blank, word): runs of blanks, and of anything that is not a blank, newline, punctuation,
    quote or backtick (a backtick escapes the next character)."""
    quotes = re.escape(_single() + _double())
    return (re.compile(r"[ \t\f\v\u00a0\ufeff]+"),
            re.compile(r"(?:[^\s{}()\[\]=;,|`" + quotes + r"]|`.?)+", re.DOTALL))


_PUNCT = frozenset("{}()[]=;,|")


def tokens(text: str, start: int = 0, end: int | None = None) -> list[Token]:
    """PowerShell text split as PowerShell's tokenizer does for strings and comments."""
    single, double = _single(), _double()
    blank, word = _lexer()
    stop = len(text) if end is None else end
    out: list[Token] = []
    i = start
    while i < stop:
        c = text[i]
        nxt = text[i + 1] if i + 1 < stop else ""
        if c in " \t\f\v\u00a0\ufeff":
            match = blank.match(text, i, stop)
            i = match.end() if match else i + 1
        elif c in "\r\n":
            j = i + 2 if text.startswith("\r\n", i) else i + 1
            out.append(Token("newline", i, j, "\n"))
            i = j
        elif c == "<" and nxt == "#":
            j = text.find("#>", i + 2, stop)
            j = stop if j < 0 else j + 2
            out.append(Token("comment", i, j, text[i:j]))
            i = j
        elif c == "#":
            match = re.compile(r"[^\r\n]*").match(text, i, stop)
            j = match.end() if match else stop
            out.append(Token("comment", i, j, text[i:j]))
            i = j
        elif c in single:
            value, j = _scan_single(text, i, single, stop)
            out.append(Token("literal", i, stop if j < 0 else j, value,
                             "unterminated" if j < 0 else ""))
            i = stop if j < 0 else j
        elif c == "@" and nxt and nxt in single + double:
            out.append(_here_string(text, i, stop, nxt in single))
            i = out[-1].end
        elif c in double:
            out.append(_expandable(text, i, stop, double))
            i = out[-1].end
        elif c == "@" and nxt in ("{", "("):
            out.append(Token("punct", i, i + 2, c + nxt))
            i += 2
        elif c in _PUNCT:
            out.append(Token("punct", i, i + 1, c))
            i += 1
        else:
            match = word.match(text, i, stop)
            j = match.end() if match and match.end() > i else i + 1
            out.append(Token("word", i, j, text[i:j]))
            i = j
    return out


def _expandable(text: str, start: int, stop: int, double: str) -> Token:
    nested: list[Token] = []
    special = _quote_pattern(double + "`$")
    i = start + 1
    while True:
        match = special.search(text, i, stop)
        if match is None:
            return Token("string", start, stop, text[start:stop], "unterminated", tuple(nested))
        i = match.start()
        c = text[i]
        if c in double:
            if i + 1 < stop and text[i + 1] in double:
                i += 2
                continue
            return Token("string", start, i + 1, text[start:i + 1], nested=tuple(nested))
        if c == "`":
            i += 2
            continue
        if i + 1 < stop and text[i + 1] == "(":
            # tokenizer.cs ScanSubExpression: parentheses are counted, nothing else is read.
            depth, j = 1, i + 2
            while j < stop and depth:
                depth += {"(": 1, ")": -1}.get(text[j], 0)
                j += 1
            nested.extend(t for t in tokens(text, i + 2, j - 1) if t.kind == "literal")
            i = j
            continue
        i += 1


def _here_string(text: str, start: int, stop: int, verbatim: bool) -> Token:
    quotes = _single() if verbatim else _double()
    header = re.compile(r"[ \t]*(\r\n|\r|\n)").match(text, start + 2, stop)
    if header is None:
        return Token("literal" if verbatim else "string", start, start + 2, "",
                     "a here-string header must end its line")
    body = header.end()
    footer = re.compile(r"(\r\n|\r|\n)[" + re.escape(quotes) + "]@").search(text, body - 1, stop)
    if footer is None:
        return Token("literal" if verbatim else "string", start, stop, text[body:stop],
                     "unterminated")
    value = text[body:footer.start()] if footer.start() >= body else ""
    return Token("literal" if verbatim else "string", start, footer.end(), value)


def _all_literals(found: Iterable[Token]) -> Iterator[Token]:
    for token in found:
        if token.kind == "literal":
            yield token
        yield from token.nested


@lru_cache(maxsize=64)
def _file_tokens(text: str) -> tuple[Token, ...]:
    # A generated file is read by check_data, read_data and literals: tokenized once.
    return tuple(tokens(text))


def literals(text: str) -> list[str]:
    """Every single-quoted literal of `text` (a data file and the code of its script blocks),
    split and decoded by PowerShell's rule."""
    return [t.value for t in _all_literals(_file_tokens(text))]


def check_data(text: str, expected_strings: Iterable[str]) -> list[Finding]:
    """Literals of a generated data file whose PowerShell value is not one of the values the file
    was generated from: the writer's escaping let a value end early and become code."""
    expected = set(expected_strings)
    lines = _Lines(text)
    findings = []
    try:
        read_data(text)
    except DataError as error:  # what an escaped-too-little value does to the file's structure
        line, column = lines.of_offset(error.offset)
        findings.append(Finding(line, column, "syntax", f"PowerShell cannot read this data file: "
                                f"{error}"))
    for token in _all_literals(_file_tokens(text)):
        raw = text[token.start:token.end]
        if token.error or token.value not in expected:
            line, column = lines.of_offset(token.start)
            why = f" ({token.error})" if token.error else ""
            findings.append(Finding(line, column, "literal", f"{_short(raw)!r} reads as "
                                    f"{_short(token.value)!r} in PowerShell{why}: not a value it "
                                    f"was generated from"))
    return sorted(findings, key=lambda f: (f.line, f.column, f.rule))


# --- data files: the structure ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Block:
    """A `{ ... }` of a data file: the offsets of the code inside the braces."""

    start: int
    end: int


class DataError(ValueError):
    """Text that is not a data file value (hashtable, array, string, literal word, script block);
    `offset`: where reading stopped."""

    def __init__(self, message: str, offset: int = 0) -> None:
        super().__init__(message)
        self.offset = offset


def read_data(text: str) -> Any:
    """A data file's value as PowerShell reads it (strings by PowerShell's quote rule): dicts,
    lists, str, Block for script blocks, and other bare words as str ($true, numbers)."""
    found = [t for t in _file_tokens(text) if t.kind != "comment"]
    reader = _DataReader(found)
    value = reader.value()
    reader.skip(("newline",))
    if reader.i != len(found):
        raise DataError(f"unexpected {_short(found[reader.i].value)!r} after the value",
                        found[reader.i].start)
    return value


class _DataReader:
    def __init__(self, found: list[Token]) -> None:
        self.found, self.i = found, 0

    def end(self) -> int:
        return self.found[-1].end if self.found else 0

    def peek(self) -> Token | None:
        return self.found[self.i] if self.i < len(self.found) else None

    def skip(self, kinds: tuple[str, ...] = ("newline",), values: tuple[str, ...] = ()) -> None:
        while (t := self.peek()) is not None and (t.kind in kinds or
                                                  (t.kind == "punct" and t.value in values)):
            self.i += 1

    def value(self) -> Any:
        first = self.single()
        self.skip(())
        if (t := self.peek()) is not None and t.kind == "punct" and t.value == ",":
            items = [first]
            while (t := self.peek()) is not None and t.kind == "punct" and t.value == ",":
                self.i += 1
                self.skip()
                items.append(self.single())
            return items
        return first

    def single(self) -> Any:
        self.skip()
        token = self.peek()
        if token is None:
            raise DataError("a value expected at the end", self.end())
        self.i += 1
        if token.kind == "literal":
            if token.error:
                raise DataError(f"{token.error} string", token.start)
            return token.value
        if token.kind == "word":
            return token.value
        if token.kind == "punct" and token.value == "@{":
            table: dict[str, Any] = {}
            while True:
                self.skip(values=(";",))
                t = self.peek()
                if t is None:
                    raise DataError("'}' missing", self.end())
                if t.kind == "punct" and t.value == "}":
                    self.i += 1
                    return table
                if t.kind not in ("word", "literal"):
                    raise DataError(f"a key expected, not {_short(t.value)!r}", t.start)
                self.i += 1
                self.skip(())
                eq = self.peek()
                if eq is None or eq.value != "=":
                    raise DataError(f"'=' expected after the key {_short(t.value)!r}",
                                    eq.start if eq is not None else self.end())
                self.i += 1
                table[t.value] = self.value()
        if token.kind == "punct" and token.value == "@(":
            items: list[Any] = []
            while True:
                self.skip(values=(",", ";"))
                t = self.peek()
                if t is None:
                    raise DataError("')' missing", self.end())
                if t.kind == "punct" and t.value == ")":
                    self.i += 1
                    return items
                value = self.value()
                items.extend(value if isinstance(value, list) else [value])
        if token.kind == "punct" and token.value == "{":
            depth = 1
            while (t := self.peek()) is not None:
                self.i += 1
                if t.kind == "punct" and t.value in ("{", "@{"):
                    depth += 1
                elif t.kind == "punct" and t.value == "}":
                    depth -= 1
                    if depth == 0:
                        return Block(token.end, t.start)
            raise DataError("'}' missing after a script block", token.start)
        raise DataError(f"a value expected, not {_short(token.value)!r}", token.start)
