"""Every docstring example in the package runs, and shows what it says.

Examples that need a running host or the network are marked ``# doctest: +SKIP`` where they
stand; everything else is executed here with the module's own globals, so an example that
drifts from the code fails the suite instead of misleading a reader.
"""
from __future__ import annotations

import doctest
import importlib
import os
import pkgutil

import pytest

import vision_events_blocks

os.environ.setdefault("WORKFLOWS_PLUGINS", "vision_events_blocks")
SKIPPED_MODULES = {"__main__"}  # running them starts a program


def modules_with_examples() -> list:
    names = []
    for info in pkgutil.walk_packages(vision_events_blocks.__path__, prefix="vision_events_blocks."):
        if info.name.rsplit(".", 1)[-1] in SKIPPED_MODULES:
            continue
        spec = importlib.util.find_spec(info.name)
        if spec and spec.origin and ">>>" in open(spec.origin, encoding="utf-8").read():
            names.append(info.name)
    return sorted(names)


MODULES = modules_with_examples()


def test_the_package_has_examples_to_run():
    assert len(MODULES) >= 10, MODULES


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    finder, runner = doctest.DocTestFinder(exclude_empty=True), doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    tests = [t for t in finder.find(module, name) if t.examples]
    for test in tests:
        runner.run(test)
    results = runner.summarize(verbose=False)
    assert results.failed == 0, f"{results.failed} of {results.attempted} examples failed in {name} (output above)"
