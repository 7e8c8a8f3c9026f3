"""A lesson's prose: its Markdown cells, read from the lesson file, and shown as plain text in a terminal.

A lesson is written once, in jupytext's percent format. Its prose is in Markdown cells, lines of
comments under a ``# %% [markdown]`` marker, so that Jupyter, VS Code and GitHub render it as Markdown
(formulas in LaTeX between dollar signs) before anything runs:

    # %% [markdown]
    # ## Scores
    #
    # Each query is compared with every key: $s_{ij} = q_i \\cdot k_j / \\sqrt{d_k}$.

    # %%
    lesson.step("Scores")

A cell whose first line is a ``## heading`` starts a step, and the code cell that follows calls
``lesson.step`` with the same heading. In a notebook the Markdown cells show themselves; in a terminal
the lesson reads them from its own file (``read_cells``) and prints them as plain text (``plain``):
LaTeX becomes Unicode ($QK^\\top/\\sqrt{d_k}$ prints as QKᵀ/√d_k), emphasis and code marks are dropped,
paragraphs are wrapped. One text, two renderings.
"""
from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

WIDTH = 78
NBSP = "\u00a0"


@dataclass
class Cell:
    kind: str          # "markdown" or "code"
    text: str          # a Markdown cell: its Markdown, the comment marks removed; a code cell: its code
    line: int          # the line of its `# %%` marker (1-based)

    @property
    def heading(self) -> str | None:
        """The step this cell starts (its `## heading`), or None."""
        first = self.text.split("\n", 1)[0]
        return first[3:].strip() if self.kind == "markdown" and first.startswith("## ") else None

    @property
    def body(self) -> str:
        """The text under the heading (all of it, for a cell without one)."""
        lines = self.text.split("\n")
        if self.heading is not None or lines[0].startswith("# "):
            lines = lines[1:]
        return "\n".join(lines).strip()


def read_cells(path: Path) -> list[Cell]:
    """The cells of a percent-format file, in order (the jupytext header before the first cell is skipped)."""
    cells: list[Cell] = []
    lines = Path(path).read_text(encoding="utf-8").split("\n")
    for number, line in enumerate(lines, start=1):
        if line.startswith("# %%"):
            kind = "markdown" if "[markdown]" in line else "code"
            cells.append(Cell(kind, "", number))
        elif cells:
            cells[-1].text += line + "\n"
    for cell in cells:
        if cell.kind == "markdown":   # "# text" -> "text", "#" -> "" (a blank line of the Markdown)
            cell.text = "\n".join(l[2:] if l.startswith("# ") else l.lstrip("#")
                                  for l in cell.text.strip().split("\n"))
        cell.text = cell.text.strip()
    return cells


# --- LaTeX to Unicode, for the terminal -------------------------------------------------------------------
SYMBOLS = {
    r"\top": "ᵀ", r"\cdot": "·", r"\times": "×", r"\odot": "⊙", r"\otimes": "⊗", r"\oplus": "⊕",
    r"\sum": "Σ", r"\prod": "Π", r"\partial": "∂", r"\nabla": "∇", r"\infty": "∞", r"\approx": "≈",
    r"\neq": "≠", r"\ne": "≠", r"\leq": "≤", r"\le": "≤", r"\geq": "≥", r"\ge": "≥", r"\ll": "≪",
    r"\gg": "≫", r"\in": "∈", r"\notin": "∉", r"\to": "→", r"\rightarrow": "→", r"\leftarrow": "←",
    r"\Rightarrow": "⇒", r"\mapsto": "↦", r"\propto": "∝", r"\sim": "~", r"\pm": "±", r"\mp": "∓",
    r"\ldots": "…", r"\dots": "…", r"\cdots": "⋯", r"\ell": "ℓ", r"\circ": "∘", r"\mid": "|",
    r"\lVert": "‖", r"\rVert": "‖", r"\|": "‖", r"\langle": "⟨", r"\rangle": "⟩", r"\lfloor": "⌊",
    r"\rfloor": "⌋", r"\lceil": "⌈", r"\rceil": "⌉", r"\quad": "  ", r"\qquad": "    ", r"\,": " ",
    r"\;": " ", r"\!": "", r"\ ": " ", r"\{": "\x01", r"\}": "\x02", r"\%": "%", r"\_": "_", r"\forall": "∀",
    r"\exists": "∃", r"\emptyset": "∅", r"\cup": "∪", r"\cap": "∩", r"\subset": "⊂", r"\equiv": "≡",
    r"\log": "log", r"\ln": "ln", r"\exp": "exp", r"\max": "max", r"\min": "min", r"\arg": "arg",
    r"\sin": "sin", r"\cos": "cos", r"\tanh": "tanh", r"\det": "det", r"\left": "", r"\right": "",
    r"\big": "", r"\Big": "", r"\bigl": "", r"\bigr": "", r"\displaystyle": "",
    r"\alpha": "α", r"\beta": "β", r"\gamma": "γ", r"\Gamma": "Γ", r"\delta": "δ", r"\Delta": "Δ",
    r"\epsilon": "ε", r"\varepsilon": "ε", r"\eta": "η", r"\theta": "θ", r"\Theta": "Θ", r"\lambda": "λ",
    r"\mu": "μ", r"\nu": "ν", r"\pi": "π", r"\rho": "ρ", r"\sigma": "σ", r"\Sigma": "Σ", r"\tau": "τ",
    r"\phi": "φ", r"\varphi": "φ", r"\Phi": "Φ", r"\psi": "ψ", r"\omega": "ω", r"\Omega": "Ω",
    r"\xi": "ξ", r"\zeta": "ζ", r"\kappa": "κ", r"\chi": "χ",
}
BLACKBOARD = {"R": "ℝ", "N": "ℕ", "Z": "ℤ", "E": "𝔼"}
SUPERSCRIPTS = str.maketrans("0123456789+-=()nTit", "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾ⁿᵀⁱᵗ")
SUBSCRIPTS = str.maketrans("0123456789+-=()", "₀₁₂₃₄₅₆₇₈₉₊₋₌₍₎")
GROUP = r"\{((?:[^{}]|\{(?:[^{}]|\{[^{}]*\})*\})*)\}"   # {...}, with up to two levels of braces inside
QUAD = "\x00"                                      # \quad's wide space, kept apart from the spaces collapsed
BRACES = "\x01\x02"                               # \{ and \}: braces to show, kept apart from the grouping ones
PREFIX = set("∂∇ΣΠ±∓")                             # ∂L, not ∂ L: these bind to what follows
OPENING = {r"\lVert", r"\langle", r"\lfloor", r"\lceil"}   # and so do opening brackets: ‖g‖, not ‖ g‖


def _script(text: str, table: dict, mark: str) -> str:
    """x^{2} -> x², and where Unicode has no such script, x^{(l)} -> x^(l) and d_{model} -> d_model."""
    if text and all(ord(ch) in table for ch in text):
        return text.translate(table)
    bare = re.fullmatch(r"\w+", text) and (mark == "_" or len(text) == 1) or re.fullmatch(r"\(.*\)", text)
    return mark + (text if bare else f"({text})")


def latex_to_unicode(math: str) -> str:
    """A formula as a terminal shows it: $\\mathrm{softmax}(QK^\\top/\\sqrt{d_k})V$ -> softmax(QKᵀ/√d_k)V."""
    s = re.sub(r"\^\{?\\top\}?", "ᵀ", math)
    s = re.sub(r"\s+(\\(?:rVert|rangle|rfloor|rceil|right)(?![a-zA-Z]))", r"\1", s)   # ‖g‖, not ‖g ‖
    s = re.sub(r"\\(?:left|right)\.", "", s)                                           # invisible delimiters
    s = re.sub(r"\\left\s*([(\[|])\s*", r"\1", s)                                     # (a, not ( a
    s = re.sub(r"\\[a-zA-Z]+\s*|\\[,;!{}%_| ]", _symbol, s)
    for _ in range(3):                              # nested groups unwrap from the inside out
        s = re.sub(r"\\(?:mathrm|text|textrm|mathit|mathbf|boldsymbol|operatorname|mathcal)\s*" + GROUP,
                   r"\1", s)
        s = re.sub(r"\\mathbb\s*\{(\w)\}", lambda m: BLACKBOARD.get(m.group(1), m.group(1)), s)
        s = re.sub(r"\\(?:hat|widehat)\s*" + GROUP, lambda m: m.group(1) + "\u0302", s)
        s = re.sub(r"\\(?:tilde|widetilde)\s*" + GROUP, lambda m: m.group(1) + "\u0303", s)
        s = re.sub(r"\\bar\s*" + GROUP, lambda m: m.group(1) + "\u0304", s)
        s = re.sub(r"\\frac\s*" + GROUP + r"\s*" + GROUP,
                   lambda m: f"{_wrap(m.group(1))}/{_wrap(m.group(2))}", s)
        s = re.sub(r"\\sqrt\s*" + GROUP, lambda m: "√" + _wrap(m.group(1)), s)
    s = re.sub(r"\^([^{\s])", lambda m: _script(m.group(1), SUPERSCRIPTS, "^"), s)
    s = re.sub(r"\^" + GROUP, lambda m: _script(m.group(1), SUPERSCRIPTS, "^"), s)
    s = re.sub(r"_" + GROUP + r"|_(\d)", lambda m: _script(m.group(1) or m.group(2), SUBSCRIPTS, "_"), s)
    s = re.sub(r" {2,}", " ", s.replace("{", "").replace("}", ""))
    return s.replace(QUAD, "  ").replace(BRACES[0], "{").replace(BRACES[1], "}")


def _symbol(match) -> str:
    """One control word as its symbol (an unknown one as written, for the group rules after it)."""
    word = match.group(0)
    name = word.rstrip() if word[1:2].isalpha() else word      # "\ " is a space, not "\" and a space
    symbol = SYMBOLS.get(name, name)
    if name in (r"\quad", r"\qquad"):
        return QUAD * (1 if name == r"\quad" else 2)
    return symbol + ("" if symbol in PREFIX or name in OPENING else word[len(name):])


def _wrap(text: str) -> str:
    """Parentheses around a term of more than one symbol, so that a/b and √x stay unambiguous."""
    return text if re.fullmatch(r"[^\s+\-*/=]+", text) else f"({text})"


def _inline(text: str) -> str:
    """One paragraph's Markdown as plain text: formulas, emphasis, code marks and links."""
    text = re.sub(r"\$\$(.+?)\$\$", lambda m: latex_to_unicode(m.group(1)), text, flags=re.DOTALL)
    # A formula inside a sentence is not broken across lines: its spaces become no-break spaces.
    text = re.sub(r"\$(.+?)\$", lambda m: latex_to_unicode(m.group(1)).replace(" ", NBSP), text,
                  flags=re.DOTALL)
    text = re.sub(r"\[([^\]]+)\]\(([^)]+)\)", r"\1 (\2)", text)          # [text](url) -> text (url)
    text = re.sub(r"\*\*(.+?)\*\*|__(.+?)__", lambda m: m.group(1) or m.group(2), text)
    text = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"\1", text)
    return re.sub(r"`([^`]+)`", r"\1", text)


def plain(markdown: str, width: int = WIDTH) -> str:
    """Markdown as a terminal shows it: paragraphs and list items wrapped, code blocks and tables kept."""
    out: list[str] = []
    blocks = re.split(r"\n\s*\n", markdown.strip())
    for block in blocks:
        lines = block.split("\n")
        if lines[0].startswith("```"):                          # a code block: as written, fences dropped
            out.append("\n".join("    " + l for l in lines if not l.startswith("```")))
        elif lines[0].lstrip().startswith("|"):                  # a table: its columns aligned
            rows = [[_inline(c.strip()) for c in l.strip().strip("|").split("|")]
                    for l in lines if not re.fullmatch(r"[\s|:-]+", l)]
            widths = [max(len(r[i]) for r in rows if i < len(r)) for i in range(max(map(len, rows)))]
            out.append("\n".join("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows))
        elif re.match(r"\s*([-*]|\d+\.)\s", lines[0]):           # a list: each item wrapped on its own
            items: list[str] = []
            for line in lines:
                if re.match(r"\s*([-*]|\d+\.)\s", line):
                    items.append(line.strip())
                else:
                    items[-1] += " " + line.strip()
            wrapped = []
            for item in items:
                marker, rest = item.split(" ", 1)
                marker = "-" if marker == "*" else marker
                wrapped.append(_fill(_inline(rest), width, initial_indent=f"  {marker} ",
                                     subsequent_indent=" " * (len(marker) + 3)))
            out.append("\n".join(wrapped))
        elif lines[0].startswith("#"):                          # a heading, underlined
            heading = _inline(lines[0].lstrip("#").strip())
            out.append(heading + "\n" + "-" * len(heading))
            if lines[1:]:
                out.append(_fill(_inline(" ".join(lines[1:])), width))
        else:
            out.append(_fill(_inline(" ".join(l.strip() for l in lines)), width))
    return "\n\n".join(out)


def _fill(text: str, width: int, **indents) -> str:
    """textwrap.fill, but never breaking at a hyphen ("pre-norm", "−log p" stay whole)."""
    return textwrap.fill(text, width, break_on_hyphens=False, **indents)
