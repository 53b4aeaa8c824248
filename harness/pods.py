"""A Kubernetes overlay's pods, run on the private engine as their manifests say.

No cluster runs here, but what the manifests ask of the images can still be
proven: each container runs as the user its securityContext names, on a
read-only root filesystem, without capabilities or privilege escalation,
with the environment its manifest builds (ConfigMaps, the namespace, `$(VAR)`
references), with the Secret made from secrets/ as files where a volume
mounts it, with each emptyDir or volume claim as a folder the pod's
containers share, and with the manifest's command and args. Init containers
run to completion first, in order.

One pod per workload is enough for what this proves. Services become
network aliases (short and full `<name>.<namespace>.svc.cluster.local`
names) on one network, so names resolve through Docker's DNS, which the
images find in /etc/resolv.conf as they find the cluster's. Each
container's ports are published on 127.0.0.1, where its readiness probe is
sent as written, Host header included.
"""

import re
import time

import requests

from .processes import free_port

NETWORK = "pods"


class PodError(AssertionError):
    pass


class Pods:
    """Every image the manifests name must be in the engine, under that name."""

    def __init__(self, engine, objects, secrets, folder):
        self.engine = engine
        self.secrets = secrets
        self.folder = folder
        self.config = {
            o["metadata"]["name"]: o["data"] for o in objects if o["kind"] == "ConfigMap"
        }
        self.services = [o for o in objects if o["kind"] == "Service"]
        (self.namespace,) = (o["metadata"]["name"] for o in objects if o["kind"] == "Namespace")
        self.ports = {}  # workload -> {container port: published port}
        self.started = []

    def __enter__(self):
        self.engine.docker("network", "create", NETWORK)
        return self

    def __exit__(self, *exc_info):
        for name in reversed(self.started):
            self.engine.docker("rm", "--force", name, check=False)
        self.engine.docker("network", "rm", NETWORK, check=False)

    def value(self, variable, known):
        if "value" in variable:
            return re.sub(r"\$\((\w+)\)", lambda ref: known[ref.group(1)], variable["value"])
        source = variable["valueFrom"]
        if "configMapKeyRef" in source:
            ref = source["configMapKeyRef"]
            return self.config[ref["name"]][ref["key"]]
        assert source["fieldRef"]["fieldPath"] == "metadata.namespace", variable
        return self.namespace

    def options(self, workload, container):
        """`docker run` options for one of a workload's containers."""
        name = workload["metadata"]["name"]
        pod = workload["spec"]["template"]["spec"]
        context = pod.get("securityContext", {}) | container.get("securityContext", {})
        options = ["--network", NETWORK]
        if "runAsUser" in context:
            options += ["--user", f"{context['runAsUser']}:{context['runAsGroup']}"]
        if context.get("readOnlyRootFilesystem"):
            options.append("--read-only")
        if context.get("capabilities", {}).get("drop") == ["ALL"]:
            options += ["--cap-drop", "ALL"]
        if context.get("allowPrivilegeEscalation") is False:
            options += ["--security-opt", "no-new-privileges"]
        known = {}
        for source in container.get("envFrom", []):
            known |= self.config[source["configMapRef"]["name"]]
        for variable in container.get("env", []):
            known[variable["name"]] = self.value(variable, known)
        for key, value in known.items():
            options += ["--env", f"{key}={value}"]
        volumes = {volume["name"]: volume for volume in pod.get("volumes", [])}
        for mount in container.get("volumeMounts", []):
            # Shared by the pod's containers, writable by any user, as an
            # emptyDir is (and a volume claim with the pod's fsGroup).
            shared = self.folder / name / mount["name"]
            shared.mkdir(parents=True, exist_ok=True)
            shared.chmod(0o777)
            self.write_secrets(volumes.get(mount["name"], {}), shared)
            readonly = ",readonly" if mount.get("readOnly") else ""
            options += ["--mount", f"type=bind,src={shared},dst={mount['mountPath']}{readonly}"]
        command = container.get("command", [])
        if command:
            options += ["--entrypoint", command[0]]
        return [*options, container["image"], *command[1:], *container.get("args", [])]

    def write_secrets(self, volume, folder):
        """A secret volume's files (plain or projected), from the Secret made
        from secrets/ (stack-secrets), readable by the pod's users."""
        sources = [volume["secret"]] if "secret" in volume else []
        sources += [s["secret"] for s in volume.get("projected", {}).get("sources", [])]
        for source in sources:
            assert source.get("secretName", source.get("name")) == "stack-secrets", source
            for item in source["items"]:
                path = folder / item["path"]
                path.write_text(self.secrets[item["key"]])
                path.chmod(0o444)

    def aliases(self, labels):
        found = []
        for service in self.services:
            if all(labels.get(key) == value for key, value in service["spec"]["selector"].items()):
                name = service["metadata"]["name"]
                found += ["--network-alias", name]
                found += ["--network-alias", f"{name}.{self.namespace}.svc.cluster.local"]
        return found

    def start(self, workload):
        """Run the init containers to completion, then the pod's container;
        a Job's runs to completion too."""
        name = workload["metadata"]["name"]
        pod = workload["spec"]["template"]["spec"]
        for init in pod.get("initContainers", []):
            self.run_to_completion(f"{name}-{init['name']}", self.options(workload, init))
        (container,) = pod["containers"]
        if workload["kind"] == "Job":
            self.run_to_completion(name, self.options(workload, container))
            return
        self.ports[name] = {
            port["containerPort"]: free_port() for port in container.get("ports", [])
        }
        published = []
        for inside, outside in self.ports[name].items():
            published += ["--publish", f"127.0.0.1:{outside}:{inside}"]
        labels = workload["spec"]["template"]["metadata"]["labels"]
        self.started.append(name)
        options = self.options(workload, container)
        self.engine.docker(
            "run", "--detach", "--name", name, *published, *self.aliases(labels), *options
        )
        self.wait_until_ready(workload, container)

    def run_to_completion(self, name, options):
        result = self.engine.docker(
            "run", "--rm", "--name", name, *options, check=False, timeout=300
        )
        if result.returncode != 0:
            raise PodError(f"{name} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")

    def ready(self, name, container):
        probe = container["readinessProbe"]
        if "exec" in probe:
            return (
                self.engine.docker("exec", name, *probe["exec"]["command"], check=False).returncode
                == 0
            )
        check = probe["httpGet"]
        port = check["port"]
        if isinstance(port, str):
            port = next(p["containerPort"] for p in container["ports"] if p["name"] == port)
        headers = {header["name"]: header["value"] for header in check.get("httpHeaders", [])}
        url = f"http://127.0.0.1:{self.ports[name][port]}{check['path']}"
        try:
            return requests.get(url, headers=headers, timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def wait_until_ready(self, workload, container, timeout=180):
        name = workload["metadata"]["name"]
        deadline = time.monotonic() + timeout
        while not self.ready(name, container):
            state = self.engine.docker("inspect", "--format", "{{.State.Status}}", name).stdout
            if state.strip() != "running" or time.monotonic() > deadline:
                logs = self.engine.docker("logs", "--tail", "40", name, check=False)
                raise PodError(f"{name} is {state.strip()}, not ready:\n{logs.stdout}{logs.stderr}")
            time.sleep(0.5)
