"""Check the Kubernetes manifests without a cluster. pre-commit runs this,
with kubectl and kubernetes-validate installed, whenever something under
k8s/ changes; `pre-commit run kubernetes --all-files` runs it by hand.

Each overlay, and k8s/monitoring, is rendered as `kubectl apply -k` would
send it, and every object is checked strictly (no unknown field) against the Kubernetes API's
own schemas, for the oldest Kubernetes these manifests need and the newest
the validator knows. Prints one line per problem; exits 1 if there is any.
"""

import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import yaml

K8S = Path(__file__).resolve().parent
# 1.30: a preStop sleep without a shell, on by default from 1.30.
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")
# Defined by the MySQL Operator's and the Prometheus Operator's CRDs, not by
# the Kubernetes API: the cluster checks them against those when applied.
OPERATOR_KINDS = {
    ("mysql.oracle.com/v2", "InnoDBCluster"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
    ("monitoring.coreos.com/v1", "PodMonitor"),
}


def problems(overlay):
    # kubectl from the hook's environment; our own arguments, no shell.
    rendered = subprocess.run(  # noqa: S603
        ["kubectl", "kustomize", str(overlay)],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
    )
    if rendered.returncode != 0:
        yield rendered.stderr.strip()
        return
    for obj in yaml.safe_load_all(rendered.stdout):
        if (obj["apiVersion"], obj["kind"]) in OPERATOR_KINDS:
            continue
        name = f"{obj['kind']} {obj['metadata']['name']}"
        for version in KUBERNETES_VERSIONS:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                where = "/".join(str(part) for part in error.path)
                yield f"{name} ({version}): {where}: {error.message}"
            except kubernetes_validate.SchemaNotFoundError:
                yield f"{name}: Kubernetes {version} has no {obj['apiVersion']}"


def main():
    found = 0
    overlays = sorted(path for path in (K8S / "overlays").iterdir() if path.is_dir())
    for folder in [*overlays, K8S / "monitoring"]:
        for problem in problems(folder):
            print(f"{folder.relative_to(K8S.parent)}: {problem}")
            found += 1
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
