"""The house rules that keep the library readable, checked on the exported modules (issue 18): each module comes
from one numbered notebook, imports only from lower-numbered ones (no upward or circular arrows), uses no other
module's private names, and stays under 500 lines."""
import ast, re
from pathlib import Path
import pytest

LIB = Path(__file__).resolve().parents[1]/'assembly_line'
MAX_LINES = 500

def _modules():
    "module name -> (notebook number, parsed tree, line count) for every exported module."
    out = {}
    for p in sorted(LIB.glob('*.py')):
        if p.name.startswith('_'): continue
        text = p.read_text(encoding='utf-8')
        m = re.search(r'File to edit: \.\./nbs/(\d+)_\w+\.ipynb', text)
        assert m, f"{p.name} is not exported from a numbered notebook"
        out[p.stem] = (int(m.group(1)), ast.parse(text), text.count('\n'))
    return out

MODULES = _modules()

def _imports(tree):
    "(module, names, line) for each import of the package's own modules, anywhere in the file."
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            mod = node.module or ''
            if node.level == 1: mod = f'assembly_line.{mod}' if mod else 'assembly_line'
            if mod == 'assembly_line':
                for a in node.names: yield a.name, [], node.lineno     # `from assembly_line import runs`
            elif mod.startswith('assembly_line.'):
                yield mod.split('.')[1], [a.name for a in node.names], node.lineno
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith('assembly_line.'): yield a.name.split('.')[1], [], node.lineno

def test_modules_import_only_lower_notebooks():
    up = [f"{name} (nb {n}) line {ln} imports {dep} (nb {MODULES[dep][0]})"
          for name, (n, tree, _) in MODULES.items() for dep, _, ln in _imports(tree)
          if dep in MODULES and MODULES[dep][0] >= n and dep != name]
    assert not up, "upward or sideways imports:\n" + "\n".join(up)

def test_no_private_names_cross_modules():
    private = [f"{name} line {ln} imports {dep}.{x}" for name, (_, tree, _) in MODULES.items()
               for dep, names, ln in _imports(tree) for x in names
               if x.startswith('_') and not x.startswith('__') and dep in MODULES]
    assert not private, "private names used across modules:\n" + "\n".join(private)

@pytest.mark.parametrize('name', sorted(MODULES))
def test_module_is_short(name):
    assert MODULES[name][2] <= MAX_LINES, f"{name}.py has {MODULES[name][2]} lines (one idea per module: split it)"
