"""The token in an environment file never reaches anything tgi-nix renders."""

from __future__ import annotations

from pathlib import Path

from tgi_nix.cli import main

TOKEN = "hf_KnownTokenForTheLeakTest0123456789abcdef"


def test_token_appears_in_no_rendered_file(tmp_path: Path) -> None:
    env_file = tmp_path / "secrets" / "tgi.env"
    env_file.parent.mkdir()
    env_file.write_text(f"HF_TOKEN={TOKEN}\nAPI_KEY=also-secret-{TOKEN[-8:]}\n")
    env_file.chmod(0o600)
    spec = tmp_path / "spec.toml"
    spec.write_text(
        f'[instances.gated]\nmodel = "meta-llama/Llama-3.1-8B-Instruct"\nport = 8080\nenvironmentFile = "{env_file}"\n'
    )
    out = tmp_path / "out"
    assert main(["generate", str(spec), "-o", str(out / "module.nix")]) == 0
    assert main(["render-units", str(spec), "-o", str(out / "units"), "--podman", "/usr/bin/podman"]) == 0
    assert main(["validate", "-q", str(spec), "--podman", "/usr/bin/podman"]) == 0

    rendered = [p for p in out.rglob("*") if p.is_file()]
    assert len(rendered) >= 4
    for path in rendered:
        text = path.read_text()
        assert TOKEN not in text and TOKEN[-8:] not in text, f"token leaked into {path}"
    unit = (out / "units" / "systemd" / "huggingface-tgi-gated.service").read_text()
    # The secret is passed by reference only: at each start root copies the file, user-only, into the
    # unit's runtime directory, where the rootless podman reads it.
    assert "--env-file=/run/huggingface-tgi-gated/environment" in unit
    assert f"copy-env-file.sh {env_file} /run/huggingface-tgi-gated/environment huggingface-tgi" in unit
    assert "EnvironmentFile=" not in unit and "HF_TOKEN" not in unit
    # The module references the path as a string, so Nix never copies the file into the store.
    assert f'environmentFile = "{env_file}";' in (out / "module.nix").read_text()
