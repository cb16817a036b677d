"""Read an OpenDSS script tree (``Master.dss`` and everything it redirects to) into objects.

OpenDSS itself is the reference, but it cannot say *where* a broken statement is, cannot
read gzip'd files and needs a full compile; utilities hand over scripts as text, so a small
tolerant reader that knows file and line of every statement is what an importer needs.

Understood: ``New``/``Edit <Class>.<name> key=value …`` (positional values for the classes
the importer maps), continuation lines (``~`` / ``More``), comments (``!``, ``//``,
``/* … */``), quoted and bracketed values, ``Redirect``/``Compile`` (relative to the file
that names them; file names are matched case-insensitively and ``X.gz`` stands in for a
missing ``X``), ``Clear``, ``Open``/``Close``, ``Disable``/``Enable`` and ``LatLongCoords``.
Solution and reporting commands (``Set``, ``Solve``, ``Buscoords`` …) are accepted and
ignored: ``Buscoords`` files hold projected x/y without a CRS, so lon/lat come from
``Long_lat_buscoords.txt`` (SMART-DS convention) in every folder the script visits.
"""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass, field
from pathlib import Path

#: Canonical spelling of the classes an importer may care about (ids keep it).
CLASS_NAMES: dict[str, str] = {
    "circuit": "Circuit",
    "vsource": "Vsource",
    "line": "Line",
    "linecode": "LineCode",
    "transformer": "Transformer",
    "load": "Load",
    "fuse": "Fuse",
    "recloser": "Recloser",
    "relay": "Relay",
    "capacitor": "Capacitor",
    "capcontrol": "CapControl",
    "regcontrol": "RegControl",
}

#: Property order for positional values (OpenDSS assigns unnamed values in this order).
#: These are also the classes whose names must be unique (others, e.g. line codes shared by
#: several feeders, are simply redefined by a later ``New``).
POSITIONAL: dict[str, tuple[str, ...]] = {
    "circuit": ("bus1", "basekv", "pu", "angle", "frequency", "phases"),
    "vsource": ("bus1", "basekv", "pu", "angle", "frequency", "phases"),
    "line": ("bus1", "bus2", "linecode", "length", "phases"),
    "load": ("phases", "bus1", "kv", "kw", "pf", "model"),
    "transformer": ("phases", "windings", "wdg", "bus", "conn", "kv", "kva"),
    "fuse": ("monitoredobj", "monitoredterm", "switchedobj", "switchedterm"),
    "recloser": ("monitoredobj", "monitoredterm", "switchedobj", "switchedterm"),
    "relay": ("monitoredobj", "monitoredterm", "switchedobj", "switchedterm"),
}

#: Commands that change nothing an importer reads.
IGNORED_COMMANDS = frozenset(
    {
        "set",
        "solve",
        "calcvoltagebases",
        "calcv",
        "buscoords",
        "makebuslist",
        "show",
        "export",
        "plot",
        "sample",
        "reset",
        "help",
        "cd",
        "var",
        "interpolate",
        "guids",
        "cleanup",
        "totals",
        "summary",
        "formedit",
        "voltagebases",
        "setkvbase",
        "select",
        "closedi",
        "fileedit",
    }
)


@dataclass
class DssObject:
    """One ``New <Class>.<name>`` object with its properties in the order given."""

    cls: str  # lower-case class key
    name: str  # as written
    where: str  # "file:line" of its New statement
    params: list[tuple[str, str]] = field(default_factory=list)  # (lower-case key, value)

    @property
    def element_id(self) -> str:
        return f"{CLASS_NAMES.get(self.cls, self.cls.title())}.{self.name}"

    def get(self, key: str, default: str | None = None) -> str | None:
        """Last value set for ``key`` (OpenDSS: later assignments win)."""
        for k, v in reversed(self.params):
            if k == key:
                return v
        return default


@dataclass
class DssScript:
    """Everything a script defined, plus lon/lat of buses and the problems seen."""

    root: Path
    objects: dict[tuple[str, str], DssObject] = field(default_factory=dict)
    coordinates: dict[str, tuple[float, float]] = field(default_factory=dict)
    switch_state: dict[tuple[str, str], bool] = field(default_factory=dict)  # Open/Close
    problems: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)

    def of_class(self, *classes: str) -> list[DssObject]:
        return [o for o in self.objects.values() if o.cls in classes]


def bus_name(value: str) -> str:
    """Bus name without its node (phase) suffix, lower-cased as OpenDSS does."""
    return value.strip().split(".", 1)[0].lower()


def is_yes(value: str | None, default: bool) -> bool:
    """OpenDSS booleans: y/yes/t/true and n/no/f/false."""
    if value is None or not value.strip():
        return default
    return value.strip()[0].lower() in ("y", "t")


def find_master(path: Path) -> Path:
    """The Master file for ``path`` (a file or a folder holding ``Master.dss[.gz]``)."""
    if path.is_dir():
        found = resolve_file(path, "Master.dss")
        if found is None:
            raise FileNotFoundError(f"{path}: no Master.dss in this folder")
        return found
    found = resolve_file(path.parent, path.name)
    if found is None:
        raise FileNotFoundError(f"{path}: no such file")
    return found


def resolve_file(folder: Path, name: str) -> Path | None:
    """``name`` inside ``folder``, tolerating letter case, backslashes and a ``.gz`` suffix."""
    relative = Path(name.replace("\\", "/"))
    here = folder
    parts = relative.parts
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        candidates = [part, part + ".gz"] if last else [part]
        nxt = None
        for candidate in candidates:
            if (here / candidate).exists():
                nxt = here / candidate
                break
        if nxt is None and here.is_dir():
            lowered = {c.lower() for c in candidates}
            nxt = next((p for p in sorted(here.iterdir()) if p.name.lower() in lowered), None)
        if nxt is None:
            return None
        here = nxt
    return here if here.is_file() else None


def read_text(path: Path) -> str:
    """File text, gunzipped when the name ends in ``.gz``."""
    raw = gzip.decompress(path.read_bytes()) if path.name.lower().endswith(".gz") else None
    data = raw if raw is not None else path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def read_script(master: Path) -> DssScript:
    """Follow ``master`` and its redirects; collect objects, coordinates and problems."""
    script = DssScript(root=master.parent)
    _Reader(script).run(master, stack=())
    return script


class _Reader:
    def __init__(self, script: DssScript) -> None:
        self.script = script
        self.coordinate_folders: set[Path] = set()
        self.shown: dict[Path, str] = {}  # file → name shown in problems

    def where(self, path: Path, line: int) -> str:
        shown = self.shown.get(path)
        if shown is None:
            try:
                shown = path.relative_to(self.script.root).as_posix()
            except ValueError:
                shown = str(path)
            self.shown[path] = shown
        return f"{shown}:{line}"

    def problem(self, path: Path, line: int, message: str) -> None:
        self.script.problems.append(f"{self.where(path, line)}: {message}")

    def run(self, path: Path, stack: tuple[Path, ...]) -> None:
        resolved = path.resolve()
        if resolved in stack:
            self.problem(path, 0, "redirect loop: the file includes itself")
            return
        self.script.files.append(path)
        self._load_coordinates(path.parent)
        try:
            text = read_text(path)
        except (OSError, EOFError, gzip.BadGzipFile) as err:
            self.problem(path, 0, f"cannot read file: {err}")
            return
        for line, statement in _statements(text):
            self.execute(path, line, statement, (*stack, resolved))

    def execute(self, path: Path, line: int, text: str, stack: tuple[Path, ...]) -> None:
        try:
            tokens = tokenize(text)
        except ValueError as err:
            self.problem(path, line, f"cannot parse statement ({err}): {text.strip()[:80]}")
            return
        if not tokens:
            return
        verb_key, verb = tokens[0]
        if verb_key is not None:
            self.problem(path, line, f"statement does not start with a command: {text[:80]}")
            return
        command = verb.lower()
        args = tokens[1:]
        if command in ("new", "edit"):
            self._define(path, line, command, args, text)
        elif command in ("redirect", "compile"):
            target = args[0][1] if args else ""
            found = resolve_file(path.parent, target) if target else None
            if found is None:
                self.problem(path, line, f"{verb} target {target!r} not found")
            else:
                self.run(found, stack)
        elif command in ("clear", "clearall"):
            self.script.objects.clear()
            self.script.switch_state.clear()
        elif command in ("open", "close", "disable", "enable"):
            self._switch(path, line, command, args)
        elif command == "latlongcoords":
            target = args[0][1] if args else ""
            found = resolve_file(path.parent, target) if target else None
            if found is None:
                self.problem(path, line, f"LatLongCoords file {target!r} not found")
            else:
                self._read_coordinates(found, lat_first=True)
        elif command not in IGNORED_COMMANDS:
            self.problem(path, line, f"unknown OpenDSS command {verb!r}")

    def _define(
        self, path: Path, line: int, command: str, args: list[tuple[str | None, str]], text: str
    ) -> None:
        if not args:
            self.problem(path, line, f"{command} without an object: {text[:80]}")
            return
        key, target = args[0]
        if key not in (None, "object"):
            self.problem(path, line, f"{command} needs <Class>.<name> first: {text[:80]}")
            return
        cls, dot, name = target.partition(".")
        if not dot or not cls or not name:
            self.problem(path, line, f"expected <Class>.<name>, got {target!r}")
            return
        ref = (cls.lower(), name.lower())
        objects = self.script.objects
        if command == "new":
            if ref in objects and ref[0] in POSITIONAL:
                first = objects[ref].where
                self.problem(path, line, f"{cls}.{name} is defined twice (first at {first})")
                return
            obj = DssObject(cls.lower(), name, self.where(path, line))
            objects[ref] = obj
        else:
            obj = objects.get(ref)
            if obj is None and ref == ("vsource", "source"):
                # ``New Circuit`` creates the source OpenDSS calls ``Vsource.source``.
                obj = next((o for o in objects.values() if o.cls == "circuit"), None)
            if obj is None:
                self.problem(path, line, f"Edit of undefined object {cls}.{name}")
                return
        order = POSITIONAL.get(obj.cls, ())
        position = 0
        for key, value in args[1:]:
            if key is None:
                if position >= len(order):
                    self.problem(path, line, f"{obj.element_id}: unexpected value {value!r}")
                    continue
                key = order[position]
            elif key in order:
                position = order.index(key)
            position += 1
            obj.params.append((key, value))

    def _switch(
        self, path: Path, line: int, command: str, args: list[tuple[str | None, str]]
    ) -> None:
        if not args or args[0][0] is not None or "." not in args[0][1]:
            self.problem(path, line, f"{command} needs <Class>.<name>")
            return
        cls, _, name = args[0][1].partition(".")
        ref = (cls.lower(), name.lower())
        if ref not in self.script.objects:
            self.problem(path, line, f"{command} of undefined object {cls}.{name}")
            return
        if command in ("open", "close"):
            self.script.switch_state[ref] = command == "close"
        else:
            self.script.objects[ref].params.append(("enabled", "y" if command == "enable" else "n"))

    def _load_coordinates(self, folder: Path) -> None:
        if folder in self.coordinate_folders:
            return
        self.coordinate_folders.add(folder)
        found = resolve_file(folder, "Long_lat_buscoords.txt")
        if found is not None:
            self._read_coordinates(found, lat_first=False)

    def _read_coordinates(self, path: Path, *, lat_first: bool) -> None:
        """``bus lon lat`` lines (``bus, lat, lon`` for OpenDSS LatLongCoords files)."""
        coordinates = self.script.coordinates
        for number, raw in enumerate(read_text(path).splitlines(), start=1):
            text = _strip_comment(raw).replace(",", " ").split()
            if not text:
                continue
            try:
                if len(text) != 3:
                    raise ValueError
                x, y = float(text[1]), float(text[2])
            except ValueError:
                self.problem(path, number, f"expected 'bus lon lat', got {raw.strip()[:80]!r}")
                continue
            lon, lat = (y, x) if lat_first else (x, y)
            coordinates.setdefault(bus_name(text[0]), (lon, lat))


def _strip_comment(line: str) -> str:
    """Text before ``!`` or ``//`` outside quotes and brackets."""
    if "!" not in line and "//" not in line:
        return line
    depth = 0
    quote = ""
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth = max(0, depth - 1)
        elif depth == 0 and (ch == "!" or line.startswith("//", i)):
            return line[:i]
    return line


def _statements(text: str) -> list[tuple[int, str]]:
    """Statements with the line they start on: comments stripped, continuations joined."""
    out: list[tuple[int, str]] = []
    in_block = False
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw
        if in_block:
            end = line.find("*/")
            if end < 0:
                continue
            line = line[end + 2 :]
            in_block = False
        stripped = line.lstrip()
        if stripped.startswith("/*"):
            if "*/" not in stripped:
                in_block = True
            continue
        line = _strip_comment(line).strip()
        if not line:
            continue
        head = line.split(None, 1)[0].lower()
        if line.startswith("~") or head in ("more", "m"):
            rest = line[1:] if line.startswith("~") else line[len(head) :]
            if out:
                out[-1] = (out[-1][0], f"{out[-1][1]} {rest}")
            else:
                out.append((number, rest))
            continue
        out.append((number, line))
    return out


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<eq>=)
      | "(?P<dq>[^"]*)"
      | '(?P<sq>[^']*)'
      | \((?P<paren>[^()]*(?:\([^()]*\)[^()]*)*)\)
      | \[(?P<bracket>[^\]]*)\]
      | \{(?P<brace>[^}]*)\}
      | (?P<word>[^\s,="'(\[{][^\s,=]*)
    )\s*,?""",
    re.VERBOSE,
)


#: Anything that needs the full tokenizer: quotes, bracketed values, spaces around "=".
_NOT_SIMPLE = re.compile(r"""["'\[{]|[\s=]\(|\s=|=\s|=$|^=|==""")


def tokenize(text: str) -> list[tuple[str | None, str]]:
    """``key=value`` pairs and bare values; ValueError on unbalanced quotes or brackets."""
    if _NOT_SIMPLE.search(text) is None:  # most statements: split on blanks, fast
        simple: list[tuple[str | None, str]] = []
        for piece in text.replace(",", " ").split():
            if piece.count("(") != piece.count(")"):
                raise ValueError(f"unbalanced brackets in {piece!r}")
            key, eq, value = piece.partition("=")
            simple.append((key.lower(), value) if eq else (None, piece))
        return simple
    raw: list[str | None] = []  # None marks "="
    pos, n = 0, len(text)
    while pos < n:
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            if text[pos:].strip(" \t,") == "":
                break
            raise ValueError(f"unbalanced quote or bracket at {text[pos : pos + 20]!r}")
        pos = match.end()
        kind = match.lastgroup
        value = match.group(kind) if kind else None
        if kind == "eq":
            raw.append(None)
        elif kind == "word":
            assert value is not None
            if value.count("(") != value.count(")") or value.count("[") != value.count("]"):
                raise ValueError(f"unbalanced brackets in {value!r}")
            raw.append(value)
        elif kind is not None:
            raw.append(value)
    tokens: list[tuple[str | None, str]] = []
    k = 0
    while k < len(raw):
        item = raw[k]
        if item is None:
            raise ValueError("'=' without a property name")
        if k + 1 < len(raw) and raw[k + 1] is None:
            value = raw[k + 2] if k + 2 < len(raw) else None
            if value is None:
                raise ValueError(f"{item}= has no value")
            tokens.append((item.lower(), value))
            k += 3
        else:
            tokens.append((None, item))
            k += 1
    return tokens
