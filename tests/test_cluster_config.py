"""The example Ray cluster config (deploy/aws-cluster.yaml) cannot be launched here (no cloud
access); check what can be checked: it parses, passes Ray's own validation, and names the image."""

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_aws_cluster_yaml_passes_rays_validation():
    from ray.autoscaler._private.util import fillout_defaults, validate_config

    cfg = yaml.safe_load((ROOT / "deploy" / "aws-cluster.yaml").read_text())
    for key in ("cluster_name", "provider", "auth", "available_node_types", "head_node_type", "docker"):
        assert key in cfg, key
    assert cfg["provider"]["type"] == "aws"
    assert cfg["head_node_type"] in cfg["available_node_types"]
    assert cfg["docker"]["image"].endswith("worldmodels:latest")
    for node in cfg["available_node_types"].values():
        assert "InstanceType" in node["node_config"]
    validate_config(cfg)
    validate_config(fillout_defaults(cfg))


def test_dockerfile_copies_what_exists_and_its_command_parses():
    """The Dockerfile's requirement files exist, it installs the project itself, and every script its
    default command runs exists and accepts the flags it is given (checked with --help, no training)."""
    import re
    import subprocess
    import sys

    docker = (ROOT / "Dockerfile").read_text()
    for req in re.findall(r"-r (\S+)", docker):
        assert (ROOT / req).is_file(), req
    assert re.search(r"pip install [^\n]*-e \.", docker), "the image must install the worldmodels package"
    cmd = re.search(r"^CMD (.*)$", docker, re.M).group(1)
    scripts = re.findall(r"\b(0\d_\w+\.py)\b", cmd)
    assert len(scripts) == 5
    for script in scripts:
        assert (ROOT / script).is_file(), script
        p = subprocess.run(
            [sys.executable, script, "--env", "carracing", "--preset", "paper", "--help"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert p.returncode == 0 and "--data-dir" in p.stdout, (script, p.stderr[-2000:])
