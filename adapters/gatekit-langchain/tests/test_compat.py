"""The adapter refuses to import against LangChain releases outside the supported range."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from importlib import metadata

import pytest
from gatekit_langchain._compat import check_versions, supported_range

INSTALLED = {"langchain-core": "1.7.2", "langchain": "1.4.7", "langgraph": "1.2.22"}


def versions(**changed: str) -> dict[str, str]:
    return {**INSTALLED, **{name.replace("_", "-"): v for name, v in changed.items()}}


def test_supported_versions_pass() -> None:
    check_versions(versions().__getitem__)
    check_versions(versions(langchain_core="1.0.0", langgraph="1.9.0rc1").__getitem__)


@pytest.mark.parametrize(
    ("package", "version"),
    [
        ("langchain_core", "0.3.74"),
        ("langchain", "2.0.0"),
        ("langgraph", "0.6.7"),
        ("langchain", "x"),
    ],
)
def test_unsupported_versions_fail_with_the_range(package: str, version: str) -> None:
    with pytest.raises(ImportError) as caught:
        check_versions(versions(**{package: version}).__getitem__)
    message = str(caught.value)
    name = package.replace("_", "-")
    assert f"{name} {version} is installed" in message
    assert f"{name}>=1.0,<2" in message
    assert supported_range() in message


def test_missing_package_fails_with_the_range() -> None:
    def version_of(name: str) -> str:
        if name == "langgraph":
            raise metadata.PackageNotFoundError(name)
        return INSTALLED[name]

    with pytest.raises(ImportError, match="needs langgraph, which is not installed"):
        check_versions(version_of)


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
