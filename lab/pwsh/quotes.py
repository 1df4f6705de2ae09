"""PowerShell's quote rule, which tree-sitter-powershell does not follow: a single-quoted string
ends at any of ' U+2018 U+2019 U+201A U+201B (two in a row stand for the second one), and a
double-quoted one at any of " U+201C U+201D U+201E. So `'a’; Evil; ’'` is a string, then code,
then a string, to PowerShell. Before parsing, such strings are rewritten with ASCII delimiters
(and their content escaped), so the grammar sees the tokens PowerShell sees."""
from __future__ import annotations

SINGLE = "'\u2018\u2019\u201a\u201b"
DOUBLE = '"\u201c\u201d\u201e'
_SMART = "\u2018\u2019\u201a\u201b\u201c\u201d\u201e"


def normalise_quotes(text: str) -> str:
    if not any(q in text for q in _SMART):
        return text  # the usual case: nothing to do
    out: list[str] = []
    _Scanner(text, out).code(0, in_subexpression=False)
    return "".join(out)


class _Scanner:
    def __init__(self, text: str, out: list[str]) -> None:
        self.t = text
        self.out = out

    def code(self, i: int, in_subexpression: bool) -> int:
        """Copy code from i; inside $( ... ) stop after its closing parenthesis."""
        t, out, n = self.t, self.out, len(self.t)
        depth = 0
        at_token_start = True
        while i < n:
            c = t[i]
            if c == "`" and i + 1 < n:
                out.append(t[i:i + 2])
                i += 2
                at_token_start = False
                continue
            if c == "<" and t.startswith("<#", i):
                end = t.find("#>", i + 2)
                end = n if end == -1 else end + 2
                out.append(t[i:end])
                i = end
                continue
            if c == "#" and at_token_start:
                end = t.find("\n", i)
                end = n if end == -1 else end
                out.append(t[i:end])
                i = end
                continue
            if c == "@" and i + 1 < n and t[i + 1] in SINGLE + DOUBLE and self._here_start(i + 2):
                i = self.here_string(i)
                continue
            if c in SINGLE:
                i = self.single(i)
                at_token_start = False
                continue
            if c in DOUBLE:
                i = self.double(i)
                at_token_start = False
                continue
            if c == "(":
                depth += 1
            elif c == ")" and in_subexpression:
                if depth == 0:
                    out.append(c)
                    return i + 1
                depth -= 1
            elif c == ")":
                depth -= 1
            out.append(c)
            at_token_start = c.isspace() or c in ";{}()|,=&"
            i += 1
        return i

    def _here_start(self, i: int) -> bool:
        t = self.t
        while i < len(t) and t[i] in " \t":
            i += 1
        return i < len(t) and t[i] in "\r\n"

    def single(self, i: int) -> int:
        t, n = self.t, len(self.t)
        i += 1
        value: list[str] = []
        while i < n:
            c = t[i]
            if c in SINGLE:
                if i + 1 < n and t[i + 1] in SINGLE:
                    value.append(t[i + 1])
                    i += 2
                    continue
                i += 1
                break
            value.append(c)
            i += 1
        self.out.append("'" + "".join(value).replace("'", "''") + "'")
        return i

    def double(self, i: int) -> int:
        t, n, out = self.t, len(self.t), self.out
        out.append('"')
        i += 1
        while i < n:
            c = t[i]
            if c == "`" and i + 1 < n:
                out.append(t[i:i + 2])
                i += 2
                continue
            if c in DOUBLE:
                if i + 1 < n and t[i + 1] in DOUBLE:
                    out.append('""' if t[i + 1] == '"' else t[i + 1])
                    i += 2
                    continue
                out.append('"')
                return i + 1
            if c == "$" and i + 1 < n and t[i + 1] == "(":
                out.append("$(")
                i = self.code(i + 2, in_subexpression=True)
                continue
            out.append(c)
            i += 1
        return i

    def here_string(self, i: int) -> int:
        t, out = self.t, self.out
        quote = t[i + 1]
        kind = "'" if quote in SINGLE else '"'
        closers = SINGLE if kind == "'" else DOUBLE
        start = t.index("\n", i) + 1
        j = start
        while j < len(t):
            end = t.find("\n", j)
            if end == -1:
                break
            if end + 2 < len(t) + 1 and t[end + 1:end + 2] and t[end + 1] in closers and \
                    t[end + 2:end + 3] == "@":
                out.append("@" + kind + t[i + 2:start] + t[start:end + 1] + kind + "@")
                return end + 3
            j = end + 1
        out.append(t[i:])
        return len(t)
