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


def test_dockerfile_installs_the_pinned_requirements_including_ray():
    docker = (ROOT / "Dockerfile").read_text()
    assert "pip install --no-cache-dir -r requirements.txt" in docker
    reqs = (ROOT / "requirements.txt").read_text()
    assert "ray==" in reqs and "tensorflow==" in reqs
