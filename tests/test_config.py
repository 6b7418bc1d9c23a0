"""Configuration precedence and the .env / config.toml readers."""

from __future__ import annotations

import stat

import pytest

from haymaker.cli import main
from haymaker.config import load_config, read_dotenv, set_value
from haymaker.errors import InvalidInput


@pytest.fixture
def places(tmp_path):
    cwd, home = tmp_path / "work", tmp_path / "home"
    cwd.mkdir()
    home.mkdir()
    return cwd, home


@pytest.mark.parametrize("flag, env, dotenv, toml, expected, source", [
    ("prod", "staging", "dev", "staging", "prod", "flag"),
    (None, "staging", "dev", "prod", "staging", "env:HAYMAKER_ENVIRONMENT"),
    (None, None, "prod", "staging", "prod", ".env"),
    (None, None, None, "staging", "staging", "~/.haymaker/config.toml"),
    (None, None, None, None, "dev", "default"),
    (None, "", "prod", None, "prod", ".env"),  # an empty variable counts as unset
])
def test_precedence(places, flag, env, dotenv, toml, expected, source):
    cwd, home = places
    if dotenv:
        (cwd / ".env").write_text(f"HAYMAKER_ENVIRONMENT={dotenv}\n")
    if toml:
        set_value("environment", toml, home=home)
    environ = {"HAYMAKER_ENVIRONMENT": env} if env is not None else {}
    cfg = load_config({"environment": flag}, environ=environ, cwd=cwd, home=home)
    assert (cfg.get("environment"), cfg.source("environment")) == (expected, source)


def test_dotenv_comments_blanks_quotes_export_and_bad_lines(places):
    cwd, _ = places
    env_file = cwd / ".env"
    env_file.write_text(
        "# a comment\n"
        "\n"
        "export AZURE_SUBSCRIPTION_ID=11111111-1111-1111-1111-111111111111\n"
        "AZURE_TENANT_ID='22222222-2222-2222-2222-222222222222'  # trailing comment\n"
        'HAYMAKER_LEDGER_CONNECTION_STRING="DefaultEndpointsProtocol=http;AccountKey=abc=="\n'
        "this line is not a setting\n"
        "HAYMAKER_REAP_PARALLEL = 6\n")
    values, warnings = read_dotenv(env_file)
    assert values == {"AZURE_SUBSCRIPTION_ID": "11111111-1111-1111-1111-111111111111",
                      "AZURE_TENANT_ID": "22222222-2222-2222-2222-222222222222",
                      "HAYMAKER_LEDGER_CONNECTION_STRING": "DefaultEndpointsProtocol=http;AccountKey=abc==",
                      "HAYMAKER_REAP_PARALLEL": "6"}
    assert warnings == [".env line 6: ignored 'this line is not a setting': write KEY=value"]
    cfg = load_config(environ={}, cwd=cwd, home=places[1])
    assert cfg.get("reap_parallel") == 6 and cfg.warnings == warnings


def test_dotenv_never_overrides_the_environment(places):
    cwd, home = places
    (cwd / ".env").write_text("AZURE_TENANT_ID=from-dotenv\n")
    cfg = load_config(environ={"AZURE_TENANT_ID": "from-env"}, cwd=cwd, home=home)
    assert cfg.get("tenant_id") == "from-env"


def test_bad_values_and_files_say_what_to_fix(places):
    cwd, home = places
    with pytest.raises(InvalidInput, match="reap_parallel from env:HAYMAKER_REAP_PARALLEL is 'many', not a whole number"):
        load_config(environ={"HAYMAKER_REAP_PARALLEL": "many"}, cwd=cwd, home=home)
    (home / ".haymaker").mkdir()
    (home / ".haymaker" / "config.toml").write_text("colour = 'blue'\n")
    with pytest.raises(InvalidInput, match="unknown keys colour"):
        load_config(environ={}, cwd=cwd, home=home)
    (home / ".haymaker" / "config.toml").write_text("environment = \n")
    with pytest.raises(InvalidInput, match="is not valid TOML"):
        load_config(environ={}, cwd=cwd, home=home)
    with pytest.raises(InvalidInput, match="unknown key 'colour'"):
        set_value("colour", "blue", home=home)


def test_config_file_is_private(places):
    _, home = places
    path = set_value("ledger_connection_string", "AccountKey=s3cr3t", home=home)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_config_commands_never_print_secrets(places, monkeypatch, capsys):
    cwd, home = places
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("HAYMAKER_LEDGER_CONNECTION_STRING", "AccountKey=s3cr3t")
    assert main(["config", "set", "reap_parallel", "7"]) == 0
    assert main(["config", "get", "reap_parallel"]) == 0
    assert capsys.readouterr().out.strip() == "7"
    assert main(["config", "list", "--json"]) == 0
    out = capsys.readouterr().out
    assert "s3cr3t" not in out and '"[secret]"' in out and '"~/.haymaker/config.toml"' in out
    assert main(["config", "get", "ledger_connection_string"]) == 0
    assert capsys.readouterr().out.strip() == "[secret]"
    assert main(["config", "get", "reap_parallel", "--json"]) == 0
    assert '"source": "~/.haymaker/config.toml"' in capsys.readouterr().out
    assert main(["config", "get", "nope"]) == 1
