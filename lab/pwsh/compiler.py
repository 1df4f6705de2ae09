"""Compiles tree-sitter-powershell's syntax tree into Python closures, once per distinct text.

Expressions become `Expr(ctx) -> value`, statements `Stmt(ctx, out)` appending what they write
to the pipeline to `out`. Single-child wrapper chains of the grammar (logical_expression ->
bitwise_expression -> ... -> unary_expression) are skipped at compile time, so running costs
only the nodes that do something.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from console.powershell import syntax
from . import convert as cv
from . import members, ops
from .convert import PSType, Ref
from .quotes import normalise_quotes
from .runtime import (NOTHING, BreakSignal, ContinueSignal, Ctx, Element, ExitSignal, Expr,
                      FunctionDef, Param, ReturnSignal, Scope, ScriptBlock, Stmt, runtime_error)
from .values import ErrorRecord, Hashtable, PSError

Node = syntax.Node
PARSE_EXCEPTION = "System.Management.Automation.ParseException"

# Grammar levels that only pass their one child on.
_WRAPPERS = frozenset({
    "logical_expression", "bitwise_expression", "comparison_expression", "additive_expression",
    "multiplicative_expression", "format_expression", "range_expression", "array_literal_expression",
    "unary_expression", "argument_expression", "logical_argument_expression",
    "bitwise_argument_expression", "comparison_argument_expression", "additive_argument_expression",
    "multiplicative_argument_expression", "format_argument_expression", "range_argument_expression",
    "left_assignment_expression", "string_literal", "integer_literal", "key_expression",
    "while_condition", "command_name_expr", "label_expression",
})
_NAME_CHAR = re.compile(rb"[A-Za-z0-9_?]")
_ESCAPES = {"0": "\0", "a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
_SCOPES = ("global", "local", "private", "script", "using", "variable")



def _iteration(body: Stmt, ctx: Ctx, out: list[Any], label: str | None) -> bool:
    """One pass of a loop's body: False when a break for this loop ends the loop. A break or
    continue labelled for an outer loop goes on up to it."""
    try:
        body(ctx, out)
    except BreakSignal as b:
        if b.label and b.label != label:
            raise
        return False
    except ContinueSignal as c:
        if c.label and c.label != label:
            raise
    return True

class ParseError(Exception):
    """The text is not PowerShell (or not the subset the lab runs): nothing of it runs."""

    def __init__(self, message: str, fqid: str, node: Node | None = None) -> None:
        where = f" (line {node.start_point[0] + 1}, column {node.start_point[1] + 1})" if node else ""
        super().__init__(message + where)
        self.record = ErrorRecord(message + where, fqid, "ParserError", PARSE_EXCEPTION)


@lru_cache(maxsize=256)
def compile_text(text: str) -> ScriptBlock:
    """The whole text as a script block (its param block, if any, included); cached per text."""
    source = normalise_quotes(text)
    tree = syntax.parse(source)
    return Compiler(source.encode("utf-8")).program(tree.root_node, source)


def _emit(out: list[Any], value: Any) -> None:
    if type(value) is list:
        out.extend(value)
    else:
        out.append(value)


def _collect(out: list[Any]) -> Any:
    n = len(out)
    return None if n == 0 else out[0] if n == 1 else out


def _collect_raw(out: list[Any]) -> Any:
    """As _collect, but no output is AutomationNull (for an assignment to keep)."""
    n = len(out)
    return NOTHING if n == 0 else out[0] if n == 1 else out


def _iterate(value: Any) -> list[Any]:
    """What foreach enumerates: arrays one level; $null (and AutomationNull) nothing."""
    if value is None or value is NOTHING:
        return []
    if type(value) is list or type(value) is tuple:
        return list(value)
    return [value]


def _run_block(ctx: Ctx, body: Stmt, out: list[Any]) -> None:
    try:
        body(ctx, out)
    except ReturnSignal:
        pass


class Compiler:
    def __init__(self, source: bytes) -> None:
        self.src = source

    # --- helpers ----------------------------------------------------------------------------------

    def text(self, node: Node) -> str:
        return self.src[node.start_byte:node.end_byte].decode("utf-8")

    def fail(self, node: Node, message: str, fqid: str = "UnsupportedSyntax") -> ParseError:
        return ParseError(message, fqid, node)

    @staticmethod
    def unwrap(node: Node) -> Node:
        while node.type in _WRAPPERS and node.child_count == 1:
            node = node.children[0]
        return node

    def check_errors(self, root: Node) -> None:
        if not root.has_error:
            return
        for n in syntax.walk(root):
            if n.type == "ERROR" or n.is_missing:
                snippet = self.text(n)[:40]
                raise self.fail(n, f"The text is not valid PowerShell near '{snippet}'.", "ParseError")

    # --- programs, blocks, statements -------------------------------------------------------------

    def program(self, root: Node, source: str) -> ScriptBlock:
        self.check_errors(root)
        params: list[Param] | None = None
        advanced = False
        body: Stmt = _nothing
        for child in root.children:
            if child.type == "param_block":
                params, advanced = self.param_block(child)
            elif child.type == "statement_list":
                body = self.statements(child)
        return ScriptBlock(params, body, source, advanced)

    def param_block(self, node: Node) -> tuple[list[Param], bool]:
        advanced = False
        params: list[Param] = []
        for child in node.children:
            if child.type == "attribute_list":
                advanced = advanced or any(self.attribute_name(a).lower() == "cmdletbinding"
                                           for a in child.children)
            elif child.type == "parameter_list":
                params = self.parameter_list(child)
        advanced = advanced or any(p.mandatory for p in params)
        return params, advanced

    def attribute_name(self, attribute: Node) -> str:
        for c in attribute.children:
            if c.type in ("attribute_name", "type_literal"):
                return self.text(c).strip("[]").strip()
        return ""

    def parameter_list(self, node: Node) -> list[Param]:
        params = []
        for sp in node.children:
            if sp.type != "script_parameter":
                continue
            param = Param(name="")
            for c in sp.children:
                if c.type == "variable":
                    param.name = self.text(c)[1:]
                    param.key = param.name.lower()
                elif c.type == "script_parameter_default":
                    param.default = self.expr(c.children[-1])
                elif c.type == "attribute_list":
                    for a in c.children:
                        self.parameter_attribute(a, param)
            params.append(param)
        return params

    def parameter_attribute(self, attribute: Node, param: Param) -> None:
        literal = next((c for c in attribute.children if c.type == "type_literal"), None)
        if literal is not None:
            written = self.text(literal)[1:-1].strip()
            full = cv.type_full_name(written)
            if full is None:
                raise self.fail(literal, f"Unable to find type [{written}].", "TypeNotFound")
            if full.lower() == "system.management.automation.switchparameter":
                param.switch = True
            else:
                param.type_name = full
            return
        if self.attribute_name(attribute).lower() == "parameter":
            args = self.text(attribute).lower().replace(" ", "")
            if "mandatory=$true" in args or re.search(r"\(mandatory[,)]", args) or "mandatory)" in args:
                param.mandatory = True
        # Validate* attributes: the JEA endpoint binds and validates before the function runs.

    def statements(self, node: Node | None) -> Stmt:
        if node is None:
            return _nothing
        compiled: list[Stmt] = []
        for c in node.children:
            if c.type not in ("empty_statement", ";", "comment"):
                stmt = self.statement(c)
                if stmt is not None:
                    compiled.append(stmt)
        if not compiled:
            return _nothing

        def run(ctx: Ctx, out: list[Any]) -> None:
            for stmt in compiled:
                try:
                    stmt(ctx, out)
                except PSError as error:
                    ctx.rs.statement_error(ctx, error)
        return run

    def block(self, node: Node) -> Stmt:
        """A statement_block `{ ... }`."""
        inner = next((c for c in node.children if c.type == "statement_list"), None)
        return self.statements(inner)

    # The compiling method of each statement node type.
    STATEMENTS = {
        "pipeline": "pipeline_statement", "if_statement": "if_statement",
        "foreach_statement": "foreach_statement", "while_statement": "while_statement",
        "do_statement": "do_statement", "for_statement": "for_statement",
        "switch_statement": "switch_statement", "try_statement": "try_statement",
        "function_statement": "function_statement", "flow_control_statement": "flow_control",
    }

    def statement(self, node: Node) -> Stmt | None:
        t = node.type
        if t == "label":
            return None
        method = self.STATEMENTS.get(t)
        if method is not None:
            compiled: Stmt = getattr(self, method)(node)
            return compiled
        raise self.fail(node, f"The lab's PowerShell does not run {t}.")

    # --- pipelines --------------------------------------------------------------------------------

    def pipeline_statement(self, node: Node) -> Stmt:
        first = node.children[0]
        if first.type == "assignment_expression":
            assign = self.assignment(first)

            def run_assign(ctx: Ctx, out: list[Any]) -> None:
                assign(ctx)
            return run_assign
        if len(node.children) > 1:
            raise self.fail(node.children[1], "Pipeline chains (&&, ||) are PowerShell 7 only.",
                            "InvalidEndOfLine")
        return self.chain_statement(first)

    def chain_parts(self, chain: Node) -> tuple[Node | None, list[Node]]:
        """(the first element if it is an expression, the commands)."""
        parts = [c for c in chain.children if c.type not in ("|", "comment")]
        for p in parts:
            if p.type in ("redirections", "redirection", "verbatim_command_argument"):
                raise self.fail(p, "Redirections are not run by the lab's PowerShell.")
        if parts and parts[0].type == "command":
            return None, parts
        return parts[0], parts[1:]

    def chain_statement(self, chain: Node) -> Stmt:
        head, commands = self.chain_parts(chain)
        if head is not None and not commands:
            return self.expression_statement(head)
        runner = self.command_chain(head, commands)

        def run(ctx: Ctx, out: list[Any]) -> None:
            out.extend(runner(ctx))
        return run

    def expression_statement(self, node: Node) -> Stmt:
        inner = self.unwrap(node)
        t = inner.type
        if t in ("post_increment_expression", "post_decrement_expression") or (
                t == "expression_with_unary_operator" and inner.children[0].type in
                ("pre_increment_expression", "pre_decrement_expression")):
            ev = self.expr(inner)

            def run_quiet(ctx: Ctx, out: list[Any]) -> None:
                ev(ctx)
            return run_quiet
        if t in ("sub_expression", "array_expression"):
            body = self.statements(self.field(inner, "statements"))
            if t == "sub_expression":
                return body  # $( ... ) as a statement writes what its statements write
        if t == "parenthesized_expression":
            inner_pipeline = next(c for c in inner.children if c.type == "pipeline")
            if inner_pipeline.children[0].type != "assignment_expression":
                head, commands = self.chain_parts(inner_pipeline.children[0])
                if commands:
                    runner = self.command_chain(head, commands)

                    def run_commands(ctx: Ctx, out: list[Any]) -> None:
                        out.extend(runner(ctx))
                    return run_commands
        if t == "variable":
            raw = self.raw(inner)

            def run_variable(ctx: Ctx, out: list[Any]) -> None:
                value = raw(ctx)
                if type(value) is list:
                    out.extend(value)
                elif value is not NOTHING:
                    out.append(value)
            return run_variable
        ev = self.expr(inner)
        if t == "invokation_expression":
            # A method that returns nothing (void) writes nothing.
            def run_call(ctx: Ctx, out: list[Any]) -> None:
                value = ev(ctx)
                if value is not None:
                    _emit(out, value)
            return run_call
        if t == "expression_with_unary_operator" and inner.children[0].type == "cast_expression" and \
                self.text(inner.children[0].children[0]).lower().replace(" ", "") \
                in ("[void]", "[system.void]"):
            def run_void(ctx: Ctx, out: list[Any]) -> None:
                ev(ctx)
            return run_void

        def run(ctx: Ctx, out: list[Any]) -> None:
            value = ev(ctx)
            if type(value) is list:
                out.extend(value)
            else:
                out.append(value)
        return run

    def pipeline_value(self, node: Node, raw: bool = False) -> Expr:
        """A pipeline used as a value (condition, right side, parenthesised): an expression
        gives its value as is; commands give their output collected (none: $null, one: it).
        `raw`: no output is AutomationNull rather than $null (what an assignment stores)."""
        first = node.children[0]
        if first.type == "assignment_expression":
            return self.assignment(first)
        if first.type != "pipeline_chain":
            return self.statement_value(node, raw)
        head, commands = self.chain_parts(first)
        if head is not None and not commands:
            return self.raw(head) if raw else self.expr(head)
        runner = self.command_chain(head, commands)
        collect = _collect_raw if raw else _collect
        return lambda ctx: collect(runner(ctx))

    def statement_value(self, node: Node, raw: bool = False) -> Expr:
        """Any statement used as a value (`$x = if (...) {...}`): its output collected."""
        if node.type == "pipeline":
            return self.pipeline_value(node, raw)
        stmt = self.statement(node) or _nothing
        collect = _collect_raw if raw else _collect

        def ev(ctx: Ctx) -> Any:
            out: list[Any] = []
            stmt(ctx, out)
            return collect(out)
        return ev

    def raw(self, node: Node) -> Expr:
        """An expression where AutomationNull matters (an assignment's right side, @(...), a
        pipeline's first element, foreach's source, the output): a variable's value as stored,
        $( ... ) and ( commands ) with no output as AutomationNull."""
        inner = self.unwrap(node)
        t = inner.type
        if t == "variable":
            scope, name = self.variable_name(inner)
            if scope in ("", "local", "private") and name not in ("true", "false", "null", "psitem"):
                def lookup(ctx: Ctx) -> Any:
                    s: Scope | None = ctx.scope
                    while s is not None:
                        v = s.vars
                        if name in v:
                            return v[name]
                        s = s.parent
                    return None
                return lookup
        elif t == "sub_expression":
            body = self.statements(self.field(inner, "statements"))

            def sub(ctx: Ctx) -> Any:
                out: list[Any] = []
                body(ctx, out)
                return _collect_raw(out)
            return sub
        elif t == "parenthesized_expression":
            return self.pipeline_value(next(c for c in inner.children if c.type == "pipeline"), raw=True)
        return self.expr(inner)

    def command_chain(self, head: Node | None, commands: list[Node]) -> Callable[[Ctx], list[Any]]:
        head_ev = self.raw(head) if head is not None else None
        compiled = [self.command(c) for c in commands]
        if head_ev is None and len(compiled) == 1:
            only = compiled[0]
            return lambda ctx: only(ctx, None)

        def run(ctx: Ctx) -> list[Any]:
            items: list[Any] | None = _pipe(head_ev(ctx)) if head_ev is not None else None
            for cmd in compiled:
                items = cmd(ctx, items)
            return items or []
        return run

    # --- commands ---------------------------------------------------------------------------------

    def command(self, node: Node) -> Callable[[Ctx, list[Any] | None], list[Any]]:
        operator = None
        name_node = None
        elements_node = None
        for c in node.children:
            if c.type == "command_invokation_operator":
                operator = self.text(c)
            elif c.type in ("command_name", "command_name_expr"):
                name_node = c
            elif c.type == "command_elements":
                elements_node = c
        assert name_node is not None
        elements = self.elements(elements_node) if elements_node is not None else []
        if operator is None:
            name = self.text(name_node)
            if re.match(r"[0-9]", name):
                # The grammar reads `1..3` at a pipeline's start as a command; PowerShell reads
                # an expression there.
                expr = self.reparse_expression(self.text(node), node)
                return lambda ctx, items: _pipe(expr(ctx))
            line = name_node.start_point[0] + 1

            def run_named(ctx: Ctx, items: list[Any] | None) -> list[Any]:
                return ctx.rs.invoke_command(ctx, name, elements, items, line=line)
            return run_named
        target_node = self.unwrap(name_node)
        if target_node.type == "command_name":
            target_name = self.text(target_node)

            def run_name(ctx: Ctx, items: list[Any] | None) -> list[Any]:
                return ctx.rs.invoke_command(ctx, target_name, elements, items, dot=operator == ".")
            return run_name
        if target_node.type == "path_command_name":
            parts = [c for c in target_node.children]
            if len(parts) != 1 or parts[0].type != "variable":
                raise self.fail(target_node, "Only `& $variable` and `& { ... }` are run by the lab.")
            target = self.expr(parts[0])
        else:
            target = self.expr(target_node)

        def run_value(ctx: Ctx, items: list[Any] | None) -> list[Any]:
            return ctx.rs.invoke_command(ctx, target(ctx), elements, items, dot=operator == ".")
        return run_value

    def reparse_expression(self, text: str, node: Node) -> Expr:
        # A leading number in parentheses is read as the expression PowerShell reads.
        fixed = re.sub(r"^(0x[0-9a-fA-F]+|[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?[lLdD]?"
                       r"(?:[kKmMgGtTpP][bB])?)", r"(\1)", text)
        tree = syntax.parse(fixed)
        sub = Compiler(fixed.encode("utf-8"))
        sub.check_errors(tree.root_node)
        stmt_list = tree.root_node.children[-1]
        chain = stmt_list.children[0].children[0] if stmt_list.children else None
        if chain is None or chain.type != "pipeline_chain":
            raise self.fail(node, f"Cannot read {text} as an expression.")
        head, commands = sub.chain_parts(chain)
        if head is None or commands:
            raise self.fail(node, f"Cannot read {text} as an expression.")
        return sub.expr(head)

    def elements(self, node: Node) -> list[Element]:
        out: list[Element] = []
        colon_next = False
        for c in node.children:
            t = c.type
            if t == "command_argument_sep":
                if self.text(c) == ":" and out and out[-1].kind == "param" and out[-1].value is None:
                    colon_next = True
                continue
            if t == "command_parameter":
                text = self.text(c)
                out.append(Element("param", name=text[1:], text=text))
                colon_next = False
                continue
            if t in ("redirection", "stop_parsing"):
                raise self.fail(c, "Redirections are not run by the lab's PowerShell.")
            if t == "argument_list":
                raise self.fail(c, "A method-call-like argument is not run by the lab's PowerShell.")
            if t == "generic_token":
                value: Expr = _const(self.generic_token(self.text(c)))
            else:
                value = self.expr(c)
            if colon_next:
                out[-1].value = value
                out[-1].colon = True
                colon_next = False
            else:
                out.append(Element("arg", value=value, text=self.text(c)))
        return out

    @staticmethod
    def generic_token(text: str) -> str:
        # A bare word is a string; backticks escape the next character.
        return re.sub(r"`(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), text)

    # --- statements -------------------------------------------------------------------------------

    def field(self, node: Node, name: str) -> Node | None:
        child = node.child_by_field_name(name)
        if child is not None:
            return child
        wanted = {"statements": "statement_list", "statement_list": "statement_list"}.get(name)
        return next((c for c in node.children if c.type == wanted), None) if wanted else None

    def if_statement(self, node: Node) -> Stmt:
        branches: list[tuple[Expr, Stmt]] = []
        otherwise: Stmt | None = None
        cond: Expr | None = None
        for c in node.children:
            if c.type == "pipeline":
                cond = self.pipeline_value(c)
            elif c.type == "statement_block":
                assert cond is not None
                branches.append((cond, self.block(c)))
            elif c.type == "elseif_clauses":
                for clause in c.children:
                    ccond = self.pipeline_value(next(x for x in clause.children if x.type == "pipeline"))
                    cbody = self.block(next(x for x in clause.children if x.type == "statement_block"))
                    branches.append((ccond, cbody))
            elif c.type == "else_clause":
                otherwise = self.block(next(x for x in c.children if x.type == "statement_block"))
        to_bool = cv.to_bool

        def run(ctx: Ctx, out: list[Any]) -> None:
            for test, body in branches:
                if to_bool(test(ctx)):
                    body(ctx, out)
                    return
            if otherwise is not None:
                otherwise(ctx, out)
        return run

    def loop_label(self, node: Node) -> str | None:
        prev = node.prev_sibling
        if prev is not None and prev.type == "label":
            return self.text(prev)[1:].lower()
        return None

    def foreach_statement(self, node: Node) -> Stmt:
        var_node = next(c for c in node.children if c.type == "variable")
        name = self.variable_name(var_node)[1]
        source = self.pipeline_value(next(c for c in node.children if c.type == "pipeline"), raw=True)
        body = self.block(next(c for c in node.children if c.type == "statement_block"))
        label = self.loop_label(node)

        def run(ctx: Ctx, out: list[Any]) -> None:
            value = source(ctx)
            items = [value] if isinstance(value, Hashtable) else _iterate(value)
            for item in items:
                ctx.scope.vars[name] = item
                if not _iteration(body, ctx, out, label):
                    break
        return run

    def while_statement(self, node: Node) -> Stmt:
        cond_node = next(c for c in node.children if c.type == "while_condition")
        cond = self.pipeline_value(cond_node.children[0])
        body = self.block(next(c for c in node.children if c.type == "statement_block"))
        label = self.loop_label(node)
        to_bool = cv.to_bool

        def run(ctx: Ctx, out: list[Any]) -> None:
            while to_bool(cond(ctx)) and _iteration(body, ctx, out, label):
                pass
        return run

    def do_statement(self, node: Node) -> Stmt:
        body = self.block(next(c for c in node.children if c.type == "statement_block"))
        cond = self.pipeline_value(next(c for c in node.children if c.type == "while_condition").children[0])
        until = any(self.text(c).lower() == "until" for c in node.children if c.child_count == 0)
        label = self.loop_label(node)
        to_bool = cv.to_bool

        def run(ctx: Ctx, out: list[Any]) -> None:
            while _iteration(body, ctx, out, label) and to_bool(cond(ctx)) != until:
                pass
        return run

    def for_statement(self, node: Node) -> Stmt:
        init = node.child_by_field_name("for_initializer")
        cond = node.child_by_field_name("for_condition")
        step = node.child_by_field_name("for_iterator")
        init_s = self.pipeline_statement(init.children[0]) if init is not None else _nothing
        cond_e = self.pipeline_value(cond.children[0]) if cond is not None else (lambda ctx: True)
        step_s = self.pipeline_statement(step.children[0]) if step is not None else _nothing
        body = self.block(next(c for c in node.children if c.type == "statement_block"))
        label = self.loop_label(node)
        to_bool = cv.to_bool

        def run(ctx: Ctx, out: list[Any]) -> None:
            init_s(ctx, out)
            while to_bool(cond_e(ctx)) and _iteration(body, ctx, out, label):
                step_s(ctx, [])
        return run

    def switch_statement(self, node: Node) -> Stmt:
        flags = {self.text(p).lower() for c in node.children if c.type == "switch_parameters"
                 for p in c.children}
        if "-file" in flags or "-parallel" in flags:
            raise self.fail(node, "switch -File is not run by the lab's PowerShell.")
        cs = "-casesensitive" in flags
        mode = "regex" if "-regex" in flags else "wildcard" if "-wildcard" in flags else "exact"
        condition = next(c for c in node.children if c.type == "switch_condition")
        source = self.pipeline_value(next(c for c in condition.children if c.type == "pipeline"))
        body = next(c for c in node.children if c.type == "switch_body")
        clauses: list[tuple[Expr | None, bool, Stmt]] = []  # (test value, is script block, body)
        default: Stmt | None = None
        label = self.loop_label(node)
        for clauses_node in (c for c in body.children if c.type == "switch_clauses"):
            for clause in clauses_node.children:
                if clause.type != "switch_clause":
                    continue
                cond_node = next(c for c in clause.children if c.type == "switch_clause_condition")
                stmts = self.block(next(c for c in clause.children if c.type == "statement_block"))
                if cond_node.named_child_count == 0:
                    word = self.text(cond_node)
                    if word.lower() == "default":
                        default = stmts
                        continue
                    clauses.append((_const(word), False, stmts))
                else:
                    inner = self.unwrap(cond_node.named_children[0])
                    is_block = inner.type == "script_block_expression"
                    clauses.append((self.expr(inner), is_block, stmts))

        def matches(ctx: Ctx, item: Any, test: Any, is_block: bool) -> bool:
            if is_block:
                return cv.to_bool(ctx.rs.invoke_dotted(ctx, test, item))
            # -match and -like of one string give a bool (compare_op is Any: arrays give lists)
            if mode == "regex":
                return bool(ops.compare_op("match", cs, cv.to_str(item), test, ctx.rs.matches_setter(ctx)))
            if mode == "wildcard":
                return bool(ops.compare_op("like", cs, cv.to_str(item), test, None))
            if isinstance(test, str) or isinstance(item, str):
                return cv.equals(cv.to_str(item), cv.to_str(test), cs)
            return cv.equals(item, test, cs)

        def run(ctx: Ctx, out: list[Any]) -> None:
            value = source(ctx)
            items = [value] if value is None or isinstance(value, Hashtable) else _iterate(value)
            saved = ctx.scope.vars.get("_")
            try:
                for item in items:
                    ctx.scope.vars["_"] = item
                    matched = False
                    try:
                        for test, is_block, stmts in clauses:
                            if matches(ctx, item, test(ctx) if test else None, is_block):
                                matched = True
                                stmts(ctx, out)
                        if not matched and default is not None:
                            default(ctx, out)
                    except ContinueSignal as c:
                        if c.label and c.label != label:
                            raise
                        continue
            except BreakSignal as b:
                if b.label and b.label != label:
                    raise
            finally:
                ctx.scope.vars["_"] = saved
        return run

    def try_statement(self, node: Node) -> Stmt:
        body = self.block(next(c for c in node.children if c.type == "statement_block"))
        catches: list[tuple[list[str], Stmt]] = []
        final: Stmt | None = None
        for c in node.children:
            if c.type == "catch_clauses":
                for clause in c.children:
                    types: list[str] = []
                    for tl in (x for x in clause.children if x.type == "catch_type_list"):
                        for lit in (y for y in tl.children if y.type == "type_literal"):
                            written = self.text(lit)[1:-1].strip()
                            types.append((cv.type_full_name(written) or written).lower())
                    catches.append((types, self.block(next(x for x in clause.children
                                                            if x.type == "statement_block"))))
            elif c.type == "finally_clause":
                final = self.block(next(x for x in c.children if x.type == "statement_block"))

        def run(ctx: Ctx, out: list[Any]) -> None:
            depth = ctx.try_depth
            ctx.try_depth = depth + 1 if catches else depth
            try:
                body(ctx, out)
            except PSError as error:
                ctx.try_depth = depth
                handler = next((h for types, h in catches if not types or _catches(types, error)), None)
                if handler is None:
                    raise
                vars_ = ctx.scope.vars
                saved = vars_.get("_")
                vars_["_"] = error.record
                ctx.rs.current_errors.append(error)
                try:
                    handler(ctx, out)
                finally:
                    ctx.rs.current_errors.pop()
                    vars_["_"] = saved
            finally:
                ctx.try_depth = depth
                if final is not None:
                    final(ctx, out)
        return run

    def function_statement(self, node: Node) -> Stmt:
        name = self.text(next(c for c in node.children if c.type == "function_name"))
        params: list[Param] | None = None
        advanced = False
        decl = next((c for c in node.children if c.type == "function_parameter_declaration"), None)
        if decl is not None:
            plist = next((c for c in decl.children if c.type == "parameter_list"), None)
            params = self.parameter_list(plist) if plist is not None else []
        sb = next((c for c in node.children if c.type == "script_block"), None)
        block = self.script_block(sb, self.text(node), params, advanced)
        definition = FunctionDef(name, block)
        key = name.lower()

        def run(ctx: Ctx, out: list[Any]) -> None:
            scope = ctx.scope
            if scope.funcs is None:
                scope.funcs = {}
            scope.funcs[key] = definition
        return run

    def script_block(self, node: Node | None, text: str, params: list[Param] | None = None,
                     advanced: bool = False) -> ScriptBlock:
        body: Stmt = _nothing
        begin = process = end = None
        if node is not None:
            for c in node.children:
                if c.type == "param_block":
                    params, advanced = self.param_block(c)
                elif c.type == "script_block_body":
                    inner = c.children[0]
                    if inner.type == "named_block_list":
                        for nb in inner.children:
                            kind = self.text(nb.children[0]).lower()
                            stmts = self.block(nb.children[1])
                            if kind == "begin":
                                begin = stmts
                            elif kind == "process":
                                process = stmts
                            elif kind == "end":
                                end = stmts
                    else:
                        body = self.statements(inner)
                elif c.type == "statement_list":
                    body = self.statements(c)
        return ScriptBlock(params, body, text, advanced, begin, process, end)

    def flow_control(self, node: Node) -> Stmt:
        keyword = self.text(node.children[0]).lower()
        arg = node.children[1] if len(node.children) > 1 else None
        if keyword == "return":
            # `return X` writes X as a statement would, then leaves the function or block.
            write = self.pipeline_statement(arg) if arg is not None else _nothing

            def run_return(ctx: Ctx, out: list[Any]) -> None:
                write(ctx, out)
                raise ReturnSignal()
            return run_return
        if keyword in ("break", "continue"):
            label = self.text(arg).lstrip(":").lower() if arg is not None else None
            signal = BreakSignal if keyword == "break" else ContinueSignal

            def run_jump(ctx: Ctx, out: list[Any]) -> None:
                raise signal(label)
            return run_jump
        if keyword == "exit":
            code = self.pipeline_value(arg) if arg is not None else None

            def run_exit(ctx: Ctx, out: list[Any]) -> None:
                raise ExitSignal(cv.to_int(code(ctx)) if code is not None else 0)
            return run_exit
        if keyword == "throw":
            value = self.pipeline_value(arg) if arg is not None else None

            def run_throw(ctx: Ctx, out: list[Any]) -> None:
                raise ctx.rs.throw(ctx, value(ctx) if value is not None else _NO_VALUE)
            return run_throw
        raise self.fail(node, f"The lab's PowerShell does not run {keyword}.")

    # --- assignment -------------------------------------------------------------------------------

    def assignment(self, node: Node) -> Expr:
        left = self.unwrap(node.children[0])
        op = self.text(node.children[1])
        value_node = node.child_by_field_name("value") or node.children[2]
        if op == "=":
            setter = self.setter(left)
            stored = self.statement_value(value_node, raw=True)

            def assign(ctx: Ctx) -> Any:
                v = stored(ctx)
                setter(ctx, v)
                return None if v is NOTHING else v
            return assign
        value = self.statement_value(value_node)
        combine = {"+=": ops.add, "-=": ops.subtract, "*=": ops.multiply, "/=": ops.divide,
                   "%=": ops.modulo}.get(op)
        if combine is None:
            raise self.fail(node.children[1], f"The assignment operator {op} is not PowerShell's.")
        getter = self.expr(left)
        setter = self.setter(left)

        def assign_op(ctx: Ctx) -> Any:
            result = combine(getter(ctx), value(ctx))
            setter(ctx, result)
            return result
        return assign_op

    def setter(self, node: Node) -> Callable[[Ctx, Any], None]:
        t = node.type
        if t == "variable":
            scope, name = self.variable_name(node)
            if name == "null":
                return lambda ctx, v: None
            if scope == "env":
                return lambda ctx, v: ctx.rs.set_env(name, v)
            if scope in ("global", "script"):
                return lambda ctx, v: ctx.rs.scope_for(ctx, scope).vars.__setitem__(name, v)
            if name in ("true", "false"):
                raise self.fail(node, f"Cannot overwrite variable {name} because it is read-only or "
                                "constant.", "VariableNotWritable")

            def set_var(ctx: Ctx, v: Any) -> None:
                ctx.scope.vars[name] = v
            return set_var
        if t == "member_access":
            target = self.expr(node.children[0])
            static = self.text(node.children[1]) == "::"
            if static:
                raise self.fail(node, "Setting a static property is not run by the lab.")
            name_of = self.member_name(node.children[2])

            def set_member(ctx: Ctx, v: Any) -> None:
                obj = target(ctx)
                members.set_member(ctx.rs, obj, name_of(ctx), v, ctx.rs.constrained)
            return set_member
        if t == "element_access":
            target = self.expr(node.children[0])
            index = self.expr(node.children[2])

            def set_item(ctx: Ctx, v: Any) -> None:
                ctx.rs.set_index(target(ctx), index(ctx), v)
            return set_item
        if t == "expression_with_unary_operator" and node.children[0].type == "cast_expression":
            cast_node = node.children[0]
            inner = self.setter(self.unwrap(cast_node.children[1]))
            type_ev = self.type_literal(cast_node.children[0])

            def set_cast(ctx: Ctx, v: Any) -> None:
                inner(ctx, ctx.rs.cast(v, type_ev(ctx)))
            return set_cast
        if t == "array_literal_expression":
            targets = [self.setter(self.unwrap(c)) for c in node.children if c.type != ","]

            def set_many(ctx: Ctx, v: Any) -> None:
                items = _iterate(v)
                for i, s in enumerate(targets):
                    if i == len(targets) - 1:
                        rest = items[i:]
                        s(ctx, None if not rest else rest[0] if len(rest) == 1 else rest)
                    else:
                        s(ctx, items[i] if i < len(items) else None)
            return set_many
        raise self.fail(node, f"Cannot assign to {t}.", "InvalidLeftHandSide")

    # --- expressions ------------------------------------------------------------------------------

    def expr(self, node: Node) -> Expr:
        node = self.unwrap(node)
        t = node.type
        handler = _EXPR.get(t)
        if handler is not None:
            return handler(self, node)
        if t == "pipeline":
            return self.pipeline_value(node)
        if t == "array_literal_expression":
            items = [self.expr(c) for c in node.children if c.type != ","]
            return lambda ctx: [i(ctx) for i in items]
        if node.child_count == 3 and t.endswith("_expression"):
            return self.binary(node)
        if t == "ERROR":
            raise self.fail(node, f"The text is not valid PowerShell near '{self.text(node)[:40]}'.",
                            "ParseError")
        raise self.fail(node, f"The lab's PowerShell does not evaluate {t}.")

    def binary(self, node: Node) -> Expr:
        left = self.expr(node.children[0])
        right = self.expr(node.children[2])
        op_node = node.children[1]
        op = self.text(op_node).lower()
        if op in ("-and", "-or"):
            to_bool = cv.to_bool
            if op == "-and":
                return lambda ctx: to_bool(left(ctx)) and to_bool(right(ctx))
            return lambda ctx: to_bool(left(ctx)) or to_bool(right(ctx))
        if op == "-xor":
            return lambda ctx: cv.to_bool(left(ctx)) != cv.to_bool(right(ctx))
        arithmetic = {"+": ops.add, "-": ops.subtract, "*": ops.multiply, "/": ops.divide,
                      "%": ops.modulo, "..": ops.range_of, "-f": ops.format_op}
        fn = arithmetic.get(op)
        if fn is not None:
            if op == "+":
                add = ops.add

                def plus(ctx: Ctx) -> Any:
                    a = left(ctx)
                    b = right(ctx)
                    if type(a) is str and type(b) is str:
                        return a + b
                    return add(a, b)
                return plus
            f = fn
            return lambda ctx: f(left(ctx), right(ctx))
        if op in ("-band", "-bor", "-bxor"):
            bit: Callable[[int, int], int] = {"-band": lambda a, b: a & b, "-bor": lambda a, b: a | b,
                                              "-bxor": lambda a, b: a ^ b}[op]
            return lambda ctx: bit(cv.to_int(left(ctx), 64), cv.to_int(right(ctx), 64))
        if op in ("-shl", "-shr"):  # PowerShell 3+; -shr keeps the sign (arithmetic shift)
            shift: Callable[[int, int], int] = {"-shl": lambda a, b: a << (b & 63),
                                                "-shr": lambda a, b: a >> (b & 63)}[op]
            return lambda ctx: shift(cv.to_int(left(ctx), 64), cv.to_int(right(ctx), 64))
        base = op[1:]
        cs = False
        if base not in ops.COMPARISONS and base not in ("replace", "split", "join", "is", "isnot", "as"):
            if base[:1] in ("c", "i") and (base[1:] in ops.COMPARISONS or base[1:] in ("replace", "split")):
                cs = base[0] == "c"
                base = base[1:]
            else:
                raise self.fail(op_node, f"Unknown operator {op}.", "UnexpectedToken")
        if base == "replace":
            return lambda ctx: ops.replace(left(ctx), right(ctx), cs)
        if base == "split":
            return lambda ctx: ops.split(left(ctx), right(ctx), cs)
        if base == "join":
            return lambda ctx: ops.join(left(ctx), right(ctx))
        if base in ("is", "isnot"):
            negate = base == "isnot"
            return lambda ctx: ops.is_type(left(ctx), right(ctx)) != negate
        if base == "as":
            def as_(ctx: Ctx) -> Any:
                try:
                    t = right(ctx)
                    return ctx.rs.cast(left(ctx), t if isinstance(t, PSType) else
                                       PSType(cv.type_full_name(cv.to_str(t)) or cv.to_str(t)))
                except PSError:
                    return None
            return as_
        compare = ops.compare_op
        if base in ("match", "notmatch"):
            return lambda ctx: compare(base, cs, left(ctx), right(ctx), ctx.rs.matches_setter(ctx))
        if base == "eq" and not cs:
            equals = cv.equals

            def eq(ctx: Ctx) -> Any:
                a = left(ctx)
                b = right(ctx)
                if type(a) is str and type(b) is str:
                    return a == b or a.lower() == b.lower()
                if type(a) is list:
                    return compare("eq", False, a, b, None)
                return equals(a, b, False)
            return eq
        return lambda ctx: compare(base, cs, left(ctx), right(ctx), None)

    # variables

    def variable_name(self, node: Node) -> tuple[str, str]:
        """(scope or drive, lower-case name) of a variable node."""
        text = self.text(node)
        if text.startswith("@"):
            raise self.fail(node, "Splatting is not run by the lab's PowerShell.")
        if text.startswith("${"):
            text = text[2:-1]
        else:
            text = text[1:]
            end = node.end_byte
            if self.src[end:end + 1] == b":" and self.src[end + 1:end + 2] != b":" and \
                    not _NAME_CHAR.match(self.src[end + 1:end + 2]):
                raise ParseError("Variable reference is not valid. ':' was not followed by a valid variable "
                                 "name character. Consider using ${} to delimit the name.",
                                 "InvalidVariableReferenceWithDrive", node)
        scope, _, name = text.rpartition(":")
        return scope.lower(), name.lower()

    def variable(self, node: Node) -> Expr:
        scope, name = self.variable_name(node)
        if scope == "env":
            return lambda ctx: ctx.rs.get_env(name)
        if scope in ("global", "script"):
            def scoped(ctx: Ctx) -> Any:
                value = ctx.rs.scope_for(ctx, scope).vars.get(name)
                return None if value is NOTHING else value
            return scoped
        if scope and scope not in _SCOPES:
            def no_drive(ctx: Ctx) -> Any:
                raise runtime_error(f"Cannot find drive. A drive with the name '{scope}' does not exist.",
                                    "DriveNotFound", "ObjectNotFound",
                                    "System.Management.Automation.DriveNotFoundException", scope)
            return no_drive
        if name == "true":
            return _const(True)
        if name == "false":
            return _const(False)
        if name == "null":
            return _const(None)
        if name == "psitem":
            name = "_"

        def lookup(ctx: Ctx) -> Any:
            s: Scope | None = ctx.scope
            while s is not None:
                v = s.vars
                if name in v:
                    value = v[name]
                    return None if value is NOTHING else value
                s = s.parent
            return None
        return lookup

    # literals

    def number(self, node: Node) -> Expr:
        text = self.text(node).lower()
        mult = 1
        for suffix, m in (("kb", 2**10), ("mb", 2**20), ("gb", 2**30), ("tb", 2**40), ("pb", 2**50)):
            if text.endswith(suffix):
                text, mult = text[:-2], m
                break
        value: int | float
        if text.startswith("0x"):
            value = int(text[2:].rstrip("l"), 16)
        elif node.type == "real_literal" or text.endswith("d"):
            value = float(text.rstrip("d"))
        else:
            value = int(text.rstrip("l"))
        return _const(value * mult)

    def verbatim(self, node: Node) -> Expr:
        text = self.text(node)
        if text.startswith("@'"):
            body = text[text.index("\n") + 1:]
            body = body[:body.rfind("\n")]
            return _const(body.rstrip("\r") if body.endswith("\r") else body)
        return _const(text[1:-1].replace("''", "'"))

    def unescape(self, text: str) -> str:
        text = text.replace('""', '"')
        return re.sub(r"`(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), text, flags=re.DOTALL)

    def expandable(self, node: Node) -> Expr:
        here = self.text(node).startswith("@")
        start = node.start_byte
        end = node.end_byte
        if here:
            raw = self.src[start:end]
            start += raw.index(b"\n") + 1
            end = start + raw[raw.index(b"\n") + 1:].rfind(b"\n")
            if self.src[end - 1:end] == b"\r":
                end -= 1
        else:
            start += 1
            end -= 1
        parts: list[Any] = []
        pos = start
        for c in node.children:
            if c.type not in ("variable", "sub_expression") or c.start_byte < start:
                continue
            if c.start_byte > pos:
                parts.append(self.unescape(self.src[pos:c.start_byte].decode("utf-8")))
            if c.type == "variable":
                parts.append(self.variable(c))
            else:
                parts.append(self.sub_expression(c))
            pos = c.end_byte
        if end > pos:
            parts.append(self.unescape(self.src[pos:end].decode("utf-8")))
        if all(isinstance(p, str) for p in parts):
            return _const("".join(parts))
        to_str = cv.to_str
        compiled: list[tuple[str, Expr | None]] = [(p, None) if isinstance(p, str) else ("", p)
                                                   for p in parts]

        def expand(ctx: Ctx) -> str:
            out = []
            for literal, ev in compiled:
                if ev is None:
                    out.append(literal)
                else:
                    v = ev(ctx)
                    out.append(v if type(v) is str else to_str(v))
            return "".join(out)
        return expand

    def type_literal(self, node: Node) -> Expr:
        written = self.text(node)[1:-1].strip()
        full = cv.type_full_name(written)
        if full is None:
            def unknown(ctx: Ctx) -> Any:
                raise runtime_error(f"Unable to find type [{written}].", "TypeNotFound",
                                    "InvalidOperation", target=written)
            return unknown
        return _const(PSType(full))

    def hash_literal(self, node: Node) -> Expr:
        entries: list[tuple[Expr, Expr]] = []
        written: set[str] = set()
        body = next((c for c in node.children if c.type == "hash_literal_body"), None)
        if body is not None:
            for entry in body.children:
                if entry.type != "hash_entry":
                    continue
                key_node = self.unwrap(entry.children[0])
                if key_node.type in ("simple_name", "verbatim_string_characters"):
                    name = self.text(key_node) if key_node.type == "simple_name" else \
                        self.text(key_node)[1:-1].replace("''", "'")
                    if name.lower() in written:
                        raise ParseError(f"Duplicate keys '{name}' are not allowed in hash literals.",
                                         "DuplicateKeyInHashLiteral", key_node)
                    written.add(name.lower())
                key = _const(self.text(key_node)) if key_node.type == "simple_name" else self.expr(key_node)
                value = self.statement_value(entry.children[2])
                entries.append((key, value))

        def build(ctx: Ctx) -> Hashtable:
            h = Hashtable()
            items = h._items
            for k, v in entries:
                key = k(ctx)
                lk = key.lower() if type(key) is str else key
                if lk in items:
                    raise runtime_error(f"Duplicate keys '{cv.to_str(key)}' are not allowed in hash "
                                        "literals.", "DuplicateKeyInHashLiteral", "ParserError")
                items[lk] = (key, v(ctx))
            return h
        return build

    def sub_expression(self, node: Node) -> Expr:
        body = self.statements(self.field(node, "statements"))

        def ev(ctx: Ctx) -> Any:
            out: list[Any] = []
            body(ctx, out)
            return _collect(out)
        return ev

    def array_expression(self, node: Node) -> Expr:
        stmts_node = self.field(node, "statements")
        if stmts_node is not None and stmts_node.child_count == 1 \
                and stmts_node.children[0].type == "pipeline":
            pipeline = stmts_node.children[0]
            first = pipeline.children[0]
            if first.type == "pipeline_chain":
                head, commands = self.chain_parts(first)
                if head is not None and not commands:
                    single = self.raw(head)

                    def one(ctx: Ctx) -> list[Any]:
                        v = single(ctx)
                        if v is NOTHING:
                            return []
                        return list(v) if type(v) is list or type(v) is tuple else [v]
                    return one
                runner = self.command_chain(head, commands)
                return lambda ctx: list(runner(ctx))
        body = self.statements(stmts_node)

        def ev(ctx: Ctx) -> list[Any]:
            out: list[Any] = []
            body(ctx, out)
            return out
        return ev

    def parenthesized(self, node: Node) -> Expr:
        return self.pipeline_value(next(c for c in node.children if c.type == "pipeline"))

    def script_block_expression(self, node: Node) -> Expr:
        params: list[Param] | None = None
        advanced = False
        pb = next((c for c in node.children if c.type == "param_block"), None)
        if pb is not None:
            params, advanced = self.param_block(pb)
        sb = next((c for c in node.children if c.type == "script_block"), None)
        text = self.text(node)[1:-1]
        block = self.script_block(sb, text, params, advanced)
        return _const(block)

    # members

    def member_name(self, node: Node) -> Callable[[Ctx], str]:
        inner = self.unwrap(node)
        if inner.type == "member_name":
            inner = self.unwrap(inner.children[0])
        if inner.type == "simple_name":
            return _const(self.text(inner))
        ev = self.expr(inner)
        return lambda ctx: cv.to_str(ev(ctx))

    def member_access(self, node: Node) -> Expr:
        static = self.text(node.children[1]) == "::"
        target = self.expr(node.children[0])
        name_node = node.children[2]
        inner = self.unwrap(name_node.children[0]) if name_node.type == "member_name" else name_node
        if static:
            name_of = self.member_name(name_node)

            def get_static(ctx: Ctx) -> Any:
                t = target(ctx)
                if not isinstance(t, PSType):
                    raise runtime_error(f"Unable to find type [{cv.to_str(t)}].", "TypeNotFound")
                return members.get_static(ctx.rs, t, name_of(ctx))
            return get_static
        if inner.type == "simple_name":
            name = self.text(inner)
            low = name.lower()
            intrinsic = low in ("count", "length", "psobject")
            get = members.get_member
            from .values import Getter
            from .values import PSObject as _PSObject

            def get_const(ctx: Ctx) -> Any:
                obj = target(ctx)
                if type(obj) is _PSObject:
                    item = obj.props._items.get(low)
                    if item is not None:
                        return item[1] if type(item[1]) is not Getter else get(ctx.rs, obj, name)
                    return get(ctx.rs, obj, name) if intrinsic else None
                if type(obj) is Hashtable:
                    item = obj._items.get(low)
                    if item is not None:
                        return item[1]
                return get(ctx.rs, obj, name)
            return get_const
        name_of = self.member_name(name_node)
        return lambda ctx: members.get_member(ctx.rs, target(ctx), name_of(ctx))

    def invokation(self, node: Node) -> Expr:
        if node.children[0].type == "invokation_foreach_expression":
            raise self.fail(node, "The .ForEach() method is not run by the lab's PowerShell.")
        target = self.expr(node.children[0])
        static = self.text(node.children[1]) == "::"
        name_of = self.member_name(node.children[2])
        arg_list = node.children[3]
        args_node = next((c for c in arg_list.children if c.type == "argument_expression_list"), None)
        arg_exprs = [self.expr(c) for c in args_node.children if c.type != ","] if args_node else []

        def call(ctx: Ctx) -> Any:
            obj = target(ctx)
            name = name_of(ctx)
            args = [a(ctx) for a in arg_exprs]
            if static:
                if not isinstance(obj, PSType):
                    raise runtime_error(f"Unable to find type [{cv.to_str(obj)}].", "TypeNotFound")
                return members.call_static(ctx.rs, obj, name, args)
            if isinstance(obj, ScriptBlock) and name.lower() in ("invoke", "invokereturnasis"):
                return _collect(ctx.rs.invoke_block(ctx, obj, [], args, None))
            return members.call_method(ctx.rs, obj, name, args)
        return call

    def element_access(self, node: Node) -> Expr:
        target = self.expr(node.children[0])
        index = self.expr(node.children[2])

        def get_item(ctx: Ctx) -> Any:
            obj = target(ctx)
            key = index(ctx)
            if type(obj) is Hashtable and type(key) is str:
                item = obj._items.get(key.lower())
                return item[1] if item is not None else None
            return ctx.rs.get_index(obj, key)
        return get_item

    # unary

    def unary(self, node: Node) -> Expr:
        first = node.children[0]
        ft = first.type
        if ft == "cast_expression":
            return self.cast(first)
        if ft in ("pre_increment_expression", "pre_decrement_expression"):
            target = self.unwrap(first.children[1])
            getter, setter = self.expr(target), self.setter(target)
            delta = 1 if ft == "pre_increment_expression" else -1

            def pre(ctx: Ctx) -> Any:
                v = ops.add(cv.to_number(getter(ctx)), delta)
                setter(ctx, v)
                return v
            return pre
        op = self.text(first).lower()
        operand = self.expr(node.children[1])
        if op in ("!", "-not"):
            to_bool = cv.to_bool
            return lambda ctx: not to_bool(operand(ctx))
        if op == ",":
            return lambda ctx: [operand(ctx)]
        if op == "-":
            return lambda ctx: ops.negate(operand(ctx))
        if op == "+":
            return lambda ctx: cv.to_number(operand(ctx))
        if op == "-split":
            return lambda ctx: ops.unary_split(operand(ctx))
        if op == "-join":
            return lambda ctx: ops.join(operand(ctx), "")
        if op == "-bnot":
            return lambda ctx: ~cv.to_int(operand(ctx), 64)
        raise self.fail(node, f"Unknown unary operator {op}.")

    def cast(self, node: Node) -> Expr:
        type_node = node.children[0]
        written = self.text(type_node)[1:-1].strip()
        operand_node = self.unwrap(node.children[1])
        if written.lower() in ("ref", "system.management.automation.psreference"):
            return self.reference(operand_node)
        type_ev = self.type_literal(type_node)
        operand = self.expr(operand_node)
        if written.lower() in ("void", "system.void"):
            def void(ctx: Ctx) -> Any:
                operand(ctx)
                return []
            return void
        return lambda ctx: ctx.rs.cast(operand(ctx), type_ev(ctx))

    def reference(self, node: Node) -> Expr:
        if node.type == "variable":
            getter = self.variable(node)
            setter = self.setter(node)
            scope, name = self.variable_name(node)

            def ref(ctx: Ctx) -> Ref:
                ctx.rs.check_type(PSType("System.Management.Automation.PSReference"))
                # [ref] binds the variable where it lives (or the current scope when new).
                s: Scope | None = ctx.scope
                while s is not None and name not in s.vars:
                    s = s.parent
                home = s or ctx.scope
                return Ref(lambda: _value(home.vars.get(name)), lambda v: home.vars.__setitem__(name, v))
            del getter, setter, scope
            return ref
        operand = self.expr(node)

        def value_ref(ctx: Ctx) -> Ref:
            box = [operand(ctx)]
            return Ref(lambda: box[0], lambda v: box.__setitem__(0, v))
        return value_ref

    def post_increment(self, node: Node) -> Expr:
        target = self.unwrap(node.children[0])
        getter, setter = self.expr(target), self.setter(target)
        delta = 1 if node.type == "post_increment_expression" else -1

        def post(ctx: Ctx) -> Any:
            old = getter(ctx)
            setter(ctx, ops.add(cv.to_number(old), delta))
            return old
        return post


_NO_VALUE = object()


def _value(v: Any) -> Any:
    return None if v is NOTHING else v


def _pipe(value: Any) -> list[Any]:
    """What an expression sends down a pipeline: an array's elements, anything else (even $null)
    as one object."""
    if type(value) is list or type(value) is tuple:
        return list(value)
    if value is NOTHING:
        return []
    return [value]


def _catches(types: list[str], error: PSError) -> bool:
    actual = error.record.exception_type.lower()
    return any(t in (actual, "system.exception", "system.management.automation.runtimeexception")
               for t in types)


def _nothing(ctx: Ctx, out: list[Any]) -> None:
    return None


def _const(value: Any) -> Callable[[Any], Any]:
    return lambda ctx: value


def _decimal(self: Compiler, node: Node) -> Expr:
    return self.number(node)


_EXPR: dict[str, Callable[[Compiler, Node], Expr]] = {
    "variable": Compiler.variable,
    "decimal_integer_literal": Compiler.number,
    "hexadecimal_integer_literal": Compiler.number,
    "real_literal": Compiler.number,
    "verbatim_string_characters": Compiler.verbatim,
    "verbatim_here_string_characters": Compiler.verbatim,
    "expandable_string_literal": Compiler.expandable,
    "expandable_here_string_literal": Compiler.expandable,
    "type_literal": Compiler.type_literal,
    "hash_literal_expression": Compiler.hash_literal,
    "sub_expression": Compiler.sub_expression,
    "array_expression": Compiler.array_expression,
    "parenthesized_expression": Compiler.parenthesized,
    "script_block_expression": Compiler.script_block_expression,
    "member_access": Compiler.member_access,
    "invokation_expression": Compiler.invokation,
    "element_access": Compiler.element_access,
    "expression_with_unary_operator": Compiler.unary,
    "cast_expression": lambda self, node: self.cast(node),
    "post_increment_expression": Compiler.post_increment,
    "post_decrement_expression": Compiler.post_increment,
    "simple_name": lambda self, node: _const(self.text(node)),
    "generic_token": lambda self, node: _const(self.generic_token(self.text(node))),
}
