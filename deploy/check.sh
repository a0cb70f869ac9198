#!/usr/bin/env bash
# Checks the deployment files as far as this machine can without a cluster, Docker or the
# Azure CLI: every YAML parses and the Kubernetes objects are consistent, the TOML inside
# ConfigMaps uses only known keys, the Bicep file is well-formed and says what callvault
# needs, the systemd unit passes systemd-analyze, and the Dockerfile copies what exists.
# (`docker build` and `az bicep build` cannot run here; run them where they exist.)
set -euo pipefail
cd "$(dirname "$0")/.."

if ! python3 -c 'import yaml' 2>/dev/null; then
  echo "check.sh: installing PyYAML" >&2
  python3 -m pip install --quiet pyyaml 2>/dev/null \
    || python3 -m pip install --quiet --break-system-packages pyyaml
fi

python3 - <<'PY'
import glob, os, re, sys, tomllib, yaml

failures = []
def fail(where, message):
    failures.append(f"{where}: {message}")

# --- YAML and Kubernetes objects -------------------------------------------------------
defaults = tomllib.load(open("config/default.toml", "rb"))
def unknown_keys(config, where):
    for section, values in config.items():
        if section not in defaults:
            fail(where, f"unknown section [{section}]")
            continue
        for key in values:
            if key not in defaults[section]:
                fail(where, f"unknown key {section}.{key}")
            elif type(values[key]) is not type(defaults[section][key]):
                # callvault refuses a value whose type differs from its default's.
                fail(where, f"{section}.{key} must be a {type(defaults[section][key]).__name__}")

yaml_files = sorted(glob.glob("deploy/**/*.yaml", recursive=True))
for path in yaml_files:
    try:
        docs = [d for d in yaml.safe_load_all(open(path)) if d is not None]
    except yaml.YAMLError as err:
        fail(path, f"not valid YAML: {err}")
        continue
    for doc in docs:
        kind = doc.get("kind")
        if not doc.get("apiVersion") or not kind:
            fail(path, "a document without apiVersion or kind")
            continue
        if kind == "Kustomization":
            for resource in doc.get("resources", []):
                if not os.path.exists(os.path.join(os.path.dirname(path), resource)):
                    fail(path, f"resource {resource} does not exist")
            continue
        if not doc.get("metadata", {}).get("name"):
            fail(path, f"{kind} without metadata.name")
        if kind == "ConfigMap" and "config.toml" in doc.get("data", {}):
            try:
                unknown_keys(tomllib.loads(doc["data"]["config.toml"]), path)
            except tomllib.TOMLDecodeError as err:
                fail(path, f"config.toml is not valid TOML: {err}")
        if kind == "Deployment":
            spec = doc["spec"]
            selector = spec["selector"]["matchLabels"]
            labels = spec["template"]["metadata"]["labels"]
            if any(labels.get(k) != v for k, v in selector.items()):
                fail(path, "selector does not match the pod labels")
            for container in spec["template"]["spec"]["containers"]:
                args = container.get("args", [])
                if "serve" not in args or "--role" not in args:
                    fail(path, "container does not run `callvault serve --role …`")
                if container.get("livenessProbe", {}).get("httpGet", {}).get("path") != "/healthz":
                    fail(path, "liveness probe is not /healthz")
                if container.get("readinessProbe", {}).get("httpGet", {}).get("path") != "/readyz":
                    fail(path, "readiness probe is not /readyz")
            if "--role" in args and args[args.index("--role") + 1] == "all":
                if spec.get("replicas") != 1 or spec.get("strategy", {}).get("type") != "Recreate":
                    fail(path, "a SQLite (--role all) Deployment needs replicas 1 and strategy Recreate")

# --- Bicep ---------------------------------------------------------------------------
bicep_path = "deploy/azure/main.bicep"
source = open(bicep_path).read()
def strip_strings_and_comments(text):
    out, i, n = [], 0, len(text)
    while i < n:
        if text.startswith("//", i):
            i = text.find("\n", i) if "\n" in text[i:] else n
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                fail(bicep_path, "unterminated /* comment")
                return "".join(out)
            i = end + 2
        elif text[i] == "'":
            i += 1
            while i < n and text[i] != "'":
                if text[i] == "\\":
                    i += 1
                elif text.startswith("${", i):
                    # An interpolation may hold strings of its own; keep its brackets.
                    depth, i = 1, i + 2
                    out.append("(")
                    while i < n and depth:
                        depth += {"{": 1, "}": -1}.get(text[i], 0)
                        i += 1
                    out.append(")")
                    continue
                i += 1
            if i >= n:
                fail(bicep_path, "unterminated string")
            i += 1
        else:
            out.append(text[i])
            i += 1
    return "".join(out)
code = strip_strings_and_comments(source)
pairs, stack = {")": "(", "]": "[", "}": "{"}, []
for line_no, line in enumerate(code.splitlines(), 1):
    for ch in line:
        if ch in "([{":
            stack.append((ch, line_no))
        elif ch in ")]}":
            if not stack or stack[-1][0] != pairs[ch]:
                fail(bicep_path, f"unbalanced `{ch}` on code line {line_no}")
            else:
                stack.pop()
for ch, line_no in stack:
    fail(bicep_path, f"`{ch}` opened on code line {line_no} is never closed")

params = re.findall(r"^param\s+(\w+)\s+(\w+)", source, re.M)
declared = [name for name, _ in params]
if len(declared) != len(set(declared)):
    fail(bicep_path, "a parameter is declared twice")
body = re.sub(r"^param\s.*$", "", source, flags=re.M)
for name in declared:
    if not re.search(rf"\b{name}\b", body):
        fail(bicep_path, f"parameter {name} is never used")
if not re.search(r"@secure\(\)\s*\n(@description\([^\n]*\)\s*\n)?param webhookSecret string", source):
    fail(bicep_path, "webhookSecret is not @secure()")
for needle in ["'Microsoft.Communication.RecordingFileStatusUpdated'", "maxDeliveryAttempts: 30",
               "eventTimeToLiveInMinutes: 1440", "endpointType: 'WebHook'", "?code=${"]:
    if needle not in source:
        fail(bicep_path, f"missing {needle}")
batch_kib = int(re.search(r"param preferredBatchSizeInKilobytes int = (\d+)", source).group(1))
if batch_kib * 1024 + 1024 * 1024 > defaults["server"]["max_body_bytes"]:
    fail(bicep_path, "a batch (plus one 1 MB event) could exceed server.max_body_bytes")
for resource in re.findall(r"^resource\s+\w+\s+'([^']+)'", source, re.M):
    if not re.fullmatch(r"Microsoft\.[A-Za-z]+/[A-Za-z/]+@\d{4}-\d{2}-\d{2}(-preview)?", resource):
        fail(bicep_path, f"resource type `{resource}` is not TYPE@API-VERSION")

# --- Dockerfile ------------------------------------------------------------------------
dockerfile = open("deploy/Dockerfile").read()
for src in re.findall(r"^COPY (?!--from)(.+) \S+$", dockerfile, re.M):
    for item in src.split():
        if not os.path.exists(item):
            fail("deploy/Dockerfile", f"COPY source {item} does not exist")
if not re.search(r"^USER\s+(?!0|root)", dockerfile, re.M):
    fail("deploy/Dockerfile", "the runtime stage does not switch to a non-root user")

if failures:
    print("\n".join(failures), file=sys.stderr)
    sys.exit(1)
print(f"deploy/check.sh: {len(yaml_files)} YAML files, main.bicep and Dockerfile look right")
PY

if command -v systemd-analyze >/dev/null 2>&1; then
  # verify wants ExecStart to exist; check the unit with a stand-in binary.
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  sed "s|/usr/local/bin/callvault|/bin/true|" deploy/systemd/callvault.service > "$tmp/callvault.service"
  # verify only warns about a bad value and still exits 0: any remark about the unit fails.
  remarks=$(systemd-analyze verify "$tmp/callvault.service" 2>&1 | grep 'callvault.service' || true)
  if [ -n "$remarks" ]; then
    echo "deploy/systemd/callvault.service: $remarks" >&2
    exit 1
  fi
  echo "deploy/check.sh: systemd unit verified"
else
  echo "deploy/check.sh: systemd-analyze not found; unit not verified" >&2
fi
echo "deploy/check.sh: docker build and az bicep build were not run (neither is available here)"
