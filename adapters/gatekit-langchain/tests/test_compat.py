"""The adapter refuses to import against LangChain releases outside the supported range."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from importlib import metadata

import pytest
from gatekit_langchain._compat import check_versions

INSTALLED = {"langchain-core": "1.7.2", "langchain": "1.4.7", "langgraph": "1.2.22"}


def pretend(monkeypatch: pytest.MonkeyPatch, **changed: str) -> None:
    versions = {**INSTALLED, **{name.replace("_", "-"): v for name, v in changed.items()}}

    def version(name: str) -> str:
        if versions.get(name) == "missing":
            raise metadata.PackageNotFoundError(name)
        return versions[name]

    monkeypatch.setattr(metadata, "version", version)


def test_supported_versions_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    pretend(monkeypatch)
    check_versions()
    pretend(monkeypatch, langchain_core="1.0.0", langgraph="1.9.0rc1")
    check_versions()


@pytest.mark.parametrize(
    ("package", "version"),
    [
        ("langchain_core", "0.3.74"),
        ("langchain", "2.0.0"),
        ("langgraph", "0.6.7"),
        ("langchain", "x"),
    ],
)
def test_unsupported_versions_fail_with_the_range(
    monkeypatch: pytest.MonkeyPatch, package: str, version: str
) -> None:
    pretend(monkeypatch, **{package: version})
    with pytest.raises(ImportError) as caught:
        check_versions()
    message = str(caught.value)
    name = package.replace("_", "-")
    assert f"{name} {version} is installed" in message
    assert f"{name}>=1.0,<2" in message
    assert f"pip install '{name}>=1.0,<2'" in message


def test_missing_package_fails_with_the_range(monkeypatch: pytest.MonkeyPatch) -> None:
    pretend(monkeypatch, langgraph="missing")
    with pytest.raises(ImportError, match=r"needs langgraph>=1.0,<2, which is not installed"):
        check_versions()


def test_import_checks_the_installed_version() -> None:
    script = textwrap.dedent(
        """
        from importlib import metadata
        real = metadata.version
        metadata.version = lambda name: "0.3.27" if name == "langchain-core" else real(name)
        try:
            import gatekit_langchain
        except ImportError as error:
            print(error)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert "gatekit-langchain supports langchain-core>=1.0,<2" in out.stdout
    assert "langchain-core 0.3.27 is installed" in out.stdout
