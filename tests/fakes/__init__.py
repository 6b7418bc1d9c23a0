"""Local stand-ins of the services HayMaker talks to, served over HTTPS on loopback.

The project's real adapters, built with the real client libraries (azure-mgmt-*, azure-identity,
azure-monitor-query, azure-core), are pointed at these servers through their endpoint seam. Each
server answers like its service: status codes, headers (Location, Retry-After, ETag), paging and
error bodies follow the official REST references and the examples in Azure/azure-rest-api-specs.
The TLS certificate is made when the test session starts and is never committed.
"""


def install_command(directory, name: str, module: str, monkeypatch, state_env: str):
    """Put a stand-in executable ``name`` on PATH that runs ``module``'s ``main`` with this repository
    importable, its state in ``directory`` (``state_env`` names it). Returns the bin directory."""
    import os
    import sys
    from pathlib import Path

    bin_dir = Path(directory) / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    exe = bin_dir / name
    exe.write_text(f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(Path(__file__).parents[2])!r})\n"
                   f"from {module} import main\nsys.exit(main(sys.argv[1:]))\n")
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv(state_env, str(directory))
    return bin_dir
