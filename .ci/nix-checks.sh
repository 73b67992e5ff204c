#!/usr/bin/env bash
# Nix checks that need no network (Debian 12, as root). What each proves: docs/nix.md.
#   1. every .nix file parses (nix-instantiate --parse);
#   2. deadnix finds no dead code; 3. nixpkgs-fmt (the flake's `formatter`) has nothing to change;
#   4. flake.nix has the one input nixpkgs, and flake.lock pins it to a full revision + narHash;
#   5. the Nix images' metadata (images/lib.nix) matches images/assistant.json, the contract
#      the Rust image builder reads (and a Rust-built archive, if NANNA_RUST_IMAGE_ARCHIVE is set),
#      and images/gpu-recipes.json, the GPU table nanna-deploy embeds; and images/lib.nix
#      renders images/container-security.json (the confinement nanna-deploy embeds) as the
#      engine flags and workspace refusals of checks/eval/confinement-flags.json;
#   6. the VM tests' Python scripts compile and call the test driver's Machine API correctly
#      (they cannot run here: no KVM);
# With a nixpkgs lib tree (NANNA_NIXPKGS_LIB: a checkout of nix-community/nixpkgs.lib, a
# nixpkgs checkout, or either's lib/ directory), on the NixOS stand-in in
# checks/eval/stub-nixpkgs (upstream modules' behaviour, cited), with the real lib.evalModules:
#   7. the module cases (checks/eval/cases.nix): package, devices, groups, units for every
#      gpu and mode, the client mode, and the assertions of bad combinations;
#   8. the module matrix (checks/eval/matrix.nix): gpu x mode x import style;
#   9. the flake's outputs, example hosts and VM test nodes evaluate; the deploy wrapper is
#      valid bash;
#  10. Nix's own `nix flake check --no-build` passes with nixpkgs overridden by the stub
#      (output schema, every derivation instantiates, every host's assertions hold). It
#      reads the flake from git: new files must be `git add`ed first.
# Without the lib tree 7-10 are reported as skipped: no registry CI can reach (crates.io,
# PyPI, npm, Debian) carries nixpkgs' lib, and it is not committed here.
# The full `nix flake check` (builds, VM tests) needs a networked machine: see docs/nix.md.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

export NIX_CONFIG='experimental-features = nix-command flakes
substituters =
sandbox = false
build-users-group ='

passed=0
failed=0
skipped=0
summary=()
record() { # record STATUS NAME [DETAIL]
    summary+=("$(printf '%-5s %s%s' "$1" "$2" "${3:+ ($3)}")")
    case "$1" in
        ok) passed=$((passed + 1)) ;;
        FAIL) failed=$((failed + 1)) ;;
        skip) skipped=$((skipped + 1)) ;;
    esac
}
# run NAME CMD...: runs a check, records its result, never aborts the script.
run() {
    local name=$1 start rc
    shift
    echo "== $name"
    start=$(date +%s)
    if "$@"; then rc=0; else rc=$?; fi
    if [ "$rc" -eq 0 ]; then
        record ok "$name" "$(($(date +%s) - start)) s"
    else
        record FAIL "$name" "exit $rc"
    fi
}

# --- tools -------------------------------------------------------------------------------
if ! command -v nix-instantiate >/dev/null 2>&1; then
    echo "== installing nix-bin (Debian)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nix-bin >/dev/null
fi
export PATH="$PATH:${CARGO_HOME:-$HOME/.cargo}/bin"
missing=()
command -v deadnix >/dev/null 2>&1 || missing+=(deadnix@1.3.1)
command -v nixpkgs-fmt >/dev/null 2>&1 || missing+=(nixpkgs-fmt@1.3.0)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "== installing ${missing[*]} from crates.io (cached in ~/.cargo/bin afterwards)"
    cargo install --locked --quiet "${missing[@]}"
fi
echo "using $(nix --version), deadnix $(deadnix --version | awk '{print $2}'), nixpkgs-fmt $(nixpkgs-fmt --version | awk '{print $2}')"

mapfile -t NIX_FILES < <(git ls-files --cached --others --exclude-standard -- '*.nix' | sort -u | while read -r f; do [ -f "$f" ] && echo "$f"; done)
if [ "${#NIX_FILES[@]}" -eq 0 ]; then
    echo "no .nix files found" >&2
    exit 1
fi
echo "${#NIX_FILES[@]} .nix files"

# --- 1-3: syntax, dead code, formatting ----------------------------------------------------
parse_all() {
    local f bad=0
    for f in "${NIX_FILES[@]}"; do
        nix-instantiate --parse "$f" >/dev/null || { echo "does not parse: $f" >&2; bad=1; }
    done
    return "$bad"
}
run "every .nix file parses" parse_all
run "deadnix: no unused bindings" deadnix --fail "${NIX_FILES[@]}"
run "nixpkgs-fmt --check (nix fmt)" nixpkgs-fmt --check "${NIX_FILES[@]}"

# --- 4: inputs and lock -------------------------------------------------------------------
check_lock() {
    local inputs
    inputs=$(nix-instantiate --eval --strict --json -E '
      let f = import ./flake.nix; in {
        inputs = builtins.mapAttrs (_: i: i.url) f.inputs;
        args = builtins.attrNames (builtins.functionArgs f.outputs);
      }') || return 1
    INPUTS="$inputs" python3 - <<'EOF'
import json, os, re, sys
flake = json.loads(os.environ["INPUTS"])
lock = json.load(open("flake.lock"))
errors = []
if list(flake["inputs"]) != ["nixpkgs"]:
    errors.append(f"flake.nix inputs are {list(flake['inputs'])}, want only nixpkgs")
if sorted(flake["args"]) != ["nixpkgs", "self"]:
    errors.append(f"outputs takes {flake['args']}, want self and nixpkgs")
url = flake["inputs"].get("nixpkgs", "")
m = re.fullmatch(r"github:NixOS/nixpkgs/([\w.-]+)", url)
if not m:
    errors.append(f"nixpkgs url {url!r} is not github:NixOS/nixpkgs/<branch>")
if lock.get("version") != 7 or lock.get("root") != "root":
    errors.append("flake.lock is not a version 7 lock rooted at 'root'")
nodes = lock.get("nodes", {})
if nodes.get("root", {}).get("inputs") != {"nixpkgs": "nixpkgs"}:
    errors.append(f"root inputs are {nodes.get('root', {}).get('inputs')}, want nixpkgs only")
if set(nodes) != {"root", "nixpkgs"}:
    errors.append(f"flake.lock has nodes {sorted(nodes)}, want root and nixpkgs")
locked = nodes.get("nixpkgs", {}).get("locked", {})
original = nodes.get("nixpkgs", {}).get("original", {})
if locked.get("type") != "github" or (locked.get("owner"), locked.get("repo")) != ("NixOS", "nixpkgs"):
    errors.append("nixpkgs is not locked to github NixOS/nixpkgs")
if not re.fullmatch(r"[0-9a-f]{40}", locked.get("rev", "")):
    errors.append(f"locked rev {locked.get('rev')!r} is not a full 40-hex revision")
if not re.fullmatch(r"sha256-[A-Za-z0-9+/]{43}=", locked.get("narHash", "")):
    errors.append(f"narHash {locked.get('narHash')!r} is not an SRI sha256")
if not isinstance(locked.get("lastModified"), int):
    errors.append("lastModified is missing")
if m and original.get("ref") != m.group(1):
    errors.append(f"lock's original ref {original.get('ref')!r} differs from flake.nix's {m.group(1)!r}")
for e in errors:
    print("flake.lock:", e, file=sys.stderr)
if not errors:
    print(f"nixpkgs {original.get('ref')} @ {locked['rev']} ({locked['narHash']})")
sys.exit(1 if errors else 0)
EOF
}
run "flake.nix inputs and flake.lock pin" check_lock

# --- 5: image metadata contract -------------------------------------------------------------
check_images() {
    local nix_meta
    nix_meta=$(nix-instantiate --eval --strict --json -E '
      let m = import ./images/lib.nix; in {
        inherit (m) assistant passwd group variantForGpu variants;
        modelServers = builtins.mapAttrs (v: _: m.modelServer v) m.variants;
      }') || return 1
    NIX_META="$nix_meta" python3 - <<'EOF'
import json, os, sys, tarfile
nix = json.loads(os.environ["NIX_META"])
spec = json.load(open("images/assistant.json"))
errors = []

def expect(what, got, want):
    if got != want:
        errors.append(f"{what}: Nix has {got!r}, images/assistant.json says {want!r}")

a, cfg = nix["assistant"], nix["assistant"]["config"]
expect("name", a["name"], spec["name"])
expect("tag", a["tag"], spec["tag"])
expect("Entrypoint", cfg["Entrypoint"], spec["entrypoint"])
expect("Cmd", cfg["Cmd"], spec["cmd"])
expect("User", cfg["User"], spec["user"])
expect("WorkingDir", cfg["WorkingDir"], spec["workdir"])
expect("Env", sorted(cfg["Env"]), sorted(f"{k}={v}" for k, v in spec["env"].items()))
expect("ExposedPorts", sorted(cfg["ExposedPorts"]), sorted(f"{p}/tcp" for p in spec["exposed_ports"]))
expect("Labels", cfg["Labels"], spec["labels"])

# The programs besides nanna: the Nix image takes each package once, in order; bubblewrap
# (the `shell` tool's sandbox) and a shell are required (the Rust builder fails without them).
packages = spec.get("packages", [])
for p in packages:
    if not isinstance(p.get("nix"), str) or not p.get("programs") or not all(isinstance(x, str) for x in p["programs"]):
        errors.append(f"packages entry {p!r} needs a nixpkgs attribute `nix` and a list of `programs`")
want_attrs = []
for p in packages:
    if p.get("nix") not in want_attrs:
        want_attrs.append(p.get("nix"))
expect("packages", a.get("packages"), want_attrs)
required = {x for p in packages if p.get("required") for x in p.get("programs", [])}
for program in ["bwrap", "sh"]:
    if program not in required:
        errors.append(f"packages: `{program}` must be a required program of the assistant image")

# The image user exists in the image's /etc/passwd, with its group.
uid, _, gid = spec["user"].partition(":")
users = {l.split(":")[2]: l.split(":") for l in nix["passwd"].splitlines() if l}
groups = {l.split(":")[2] for l in nix["group"].splitlines() if l}
if uid not in users:
    errors.append(f"user {spec['user']} has no /etc/passwd entry in the Nix image")
elif users[uid][5] != spec["env"].get("HOME", users[uid][5]):
    errors.append(f"HOME {spec['env']['HOME']} differs from the passwd home {users[uid][5]}")
if gid and gid not in groups:
    errors.append(f"group {gid} has no /etc/group entry in the Nix image")

# Model-server images: one per GPU kind of images/gpu-recipes.json (the table nanna-deploy
# embeds), all under one name, serving on 0.0.0.0:11434, with the recipe's environment.
recipes = json.load(open("images/gpu-recipes.json"))["accelerators"]
want_tags = {r["name"]: r["nix"]["variant"] for r in recipes}
expect("GPU -> model-server variant", nix["variantForGpu"], want_tags)
expect("variants' nixpkgs packages", {v: m["package"] for v, m in nix["variants"].items()},
       {r["nix"]["variant"]: r["nix"]["ollama_package"] for r in recipes})
for r in recipes:
    image = nix["modelServers"].get(r["nix"]["variant"])
    if image is None:
        errors.append(f"{r['name']}: no model-server image for variant {r['nix']['variant']}")
        continue
    for k, v in r["env"].items():
        if f"{k}={v}" not in image["config"]["Env"]:
            errors.append(f"{r['nix']['variant']}: the recipe's {k}={v} is not in the image's Env")
for variant, image in nix["modelServers"].items():
    c = image["config"]
    if image["name"] != "localhost/nanna-coder-ollama" or image["tag"] != variant:
        errors.append(f"model-server image {image['name']}:{image['tag']} is not localhost/nanna-coder-ollama:{variant}")
    if "OLLAMA_HOST=0.0.0.0:11434" not in c["Env"]:
        errors.append(f"{variant}: OLLAMA_HOST is not 0.0.0.0:11434")
    if list(c["ExposedPorts"]) != ["11434/tcp"] or "/root/.ollama" not in c.get("Volumes", {}):
        errors.append(f"{variant}: port 11434 or the /root/.ollama volume is missing")
    if c["Labels"].get("dev.nanna.gpu") != variant:
        errors.append(f"{variant}: label dev.nanna.gpu is {c['Labels'].get('dev.nanna.gpu')!r}")

# Optionally, the image the Rust builder wrote (a docker-archive tarball).
archive = os.environ.get("NANNA_RUST_IMAGE_ARCHIVE")
if archive:
    with tarfile.open(archive) as t:
        manifest = json.load(t.extractfile("manifest.json"))
        rust = json.load(t.extractfile(manifest[0]["Config"]))["config"]
        tags = manifest[0].get("RepoTags") or []
        files = set()
        for layer in manifest[0]["Layers"]:
            with tarfile.open(fileobj=t.extractfile(layer)) as lt:
                files |= {m.name.lstrip("./") for m in lt.getmembers()}
    for program in sorted(required):
        if f"bin/{program}" not in files:
            errors.append(f"Rust-built image has no /bin/{program}")
    for key in ["Entrypoint", "Cmd", "User", "WorkingDir", "Labels"]:
        if rust.get(key) != cfg[key]:
            errors.append(f"Rust-built image {key} = {rust.get(key)!r}, Nix image has {cfg[key]!r}")
    if sorted(rust.get("Env") or []) != sorted(cfg["Env"]):
        errors.append(f"Rust-built image Env {rust.get('Env')} differs from the Nix image's {cfg['Env']}")
    if sorted(rust.get("ExposedPorts") or {}) != sorted(cfg["ExposedPorts"]):
        errors.append("Rust-built image ExposedPorts differ from the Nix image's")
    ref = f"{a['name']}:{a['tag']}"
    if tags and ref not in tags:
        errors.append(f"Rust-built image is tagged {tags}, the Nix image {ref}")
    print(f"compared with the Rust-built archive {archive}")
else:
    print("NANNA_RUST_IMAGE_ARCHIVE unset: compared Nix metadata with images/assistant.json only")

for e in errors:
    print("image contract:", e, file=sys.stderr)
sys.exit(1 if errors else 0)
EOF
}
run "image metadata: Nix images agree with images/assistant.json" check_images

# The NixOS module's containers mode confines its containers with these flags: compare what
# images/lib.nix renders with the flags written out in checks/eval/confinement-flags.json.
check_confinement() {
    local rendered
    rendered=$(nix-instantiate --eval --strict --json -E '
      let
        m = import ./images/lib.nix;
        # The profile is a store path named by its content: the same path proves the same file.
        profile = "${./images/assistant-seccomp.json}";
        mark = builtins.replaceStrings [ profile ] [ "@assistant-seccomp.json" ];
        want = builtins.fromJSON (builtins.readFile ./checks/eval/confinement-flags.json);
      in {
        flags = builtins.mapAttrs (backend: services:
          builtins.mapAttrs (service: _: map mark (m.containerFlags backend service)) services) want.flags;
        refusals = map (w: m.workspaceRefusal w.path w.home) want.workspaces;
        services = builtins.attrNames m.confinement.services;
      }') || return 1
    RENDERED="$rendered" python3 - <<'EOF'
import json, os, sys
got = json.loads(os.environ["RENDERED"])
want = json.load(open("checks/eval/confinement-flags.json"))
errors = []
for backend, services in want["flags"].items():
    if sorted(services) != sorted(got["services"]):
        errors.append(f"{backend}: flags written out for {sorted(services)}, the table has {got['services']}")
    for service, flags in services.items():
        if got["flags"][backend][service] != flags:
            errors.append(f"{backend} {service}: images/lib.nix renders {got['flags'][backend][service]}, want {flags}")
for case, refusal in zip(want["workspaces"], got["refusals"]):
    if case["refused"] is None and refusal is not None:
        errors.append(f"workspace {case['path']!r} refused ({refusal}), want accepted")
    elif case["refused"] is not None and (refusal is None or case["refused"] not in refusal):
        errors.append(f"workspace {case['path']!r}: {refusal!r}, want a refusal mentioning {case['refused']!r}")
for e in errors:
    print("confinement:", e, file=sys.stderr)
if not errors:
    print(f"  {sum(len(s) for s in want['flags'].values())} flag sets, {len(want['workspaces'])} workspaces as written out")
sys.exit(1 if errors else 0)
EOF
}
run "container confinement: images/lib.nix renders images/container-security.json" check_confinement

# --- 6: VM test scripts --------------------------------------------------------------------
vm_scripts() {
    local out rc=0
    out=$(mktemp)
    nix-instantiate --eval --strict --json checks/eval/vm-scripts.nix >"$out" || rc=1
    [ "$rc" -ne 0 ] || python3 checks/eval/check-test-script.py "$out" || rc=1
    rm -f "$out"
    return "$rc"
}
run "VM test scripts compile and match the test driver's API" vm_scripts

# --- 7-10: module and flake evaluation on the NixOS stand-in, with nixpkgs' lib ------------
find_lib() {
    local candidate=${NANNA_NIXPKGS_LIB:-}
    [ -n "$candidate" ] || return 1
    if [ -f "$candidate/lib/default.nix" ] && [ -f "$candidate/lib/modules.nix" ]; then
        echo "$candidate/lib"
    elif [ -f "$candidate/default.nix" ] && [ -f "$candidate/modules.nix" ]; then
        echo "$candidate"
    else
        echo "NANNA_NIXPKGS_LIB=$candidate holds no nixpkgs lib (no lib/modules.nix)" >&2
        return 2
    fi
}

# The stub nixpkgs (a throwaway directory): checks/eval/stub-nixpkgs next to the real lib.
make_stub() {
    STUB=$(mktemp -d)
    cp -r "$ROOT"/checks/eval/stub-nixpkgs/. "$STUB/"
    ln -s "$LIB_DIR" "$STUB/lib"
}

module_cases() {
    local out rc=0
    out=$(mktemp)
    nix-instantiate --eval --strict --json checks/eval/ci.nix \
        --arg stubNixpkgs "$STUB" --arg flakeDir "$ROOT" >"$out" || rc=1
    if [ "$rc" -eq 0 ]; then
        python3 - "$out" <<'EOF' || rc=1
import json, sys
results = json.load(open(sys.argv[1]))
bad = [r for r in results if not r["ok"]]
for r in results:
    mark = "ok  " if r["ok"] else "FAIL"
    line = f"  {mark} {r['case']}: {r['what']}"
    if not r["ok"]:
        line += f" -- {r['detail']}"
    if not r["ok"] or "-v" in sys.argv:
        print(line)
print(f"  {len(results) - len(bad)} of {len(results)} module checks hold")
sys.exit(1 if bad else 0)
EOF
    fi
    rm -f "$out"
    return "$rc"
}

module_matrix() {
    python3 checks/eval/run-matrix.py "$STUB" "$ROOT"
}

flake_eval() {
    local dir rc=0
    dir=$(mktemp -d)
    nix-instantiate --eval --strict --json checks/eval/flake-outputs.nix \
        --arg stubNixpkgs "$STUB" --arg flakeDir "$ROOT" >"$dir/out.json" || rc=1
    if [ "$rc" -eq 0 ]; then
        python3 - "$dir" <<'EOF' || rc=1
import json, os, shutil, subprocess, sys
dir = sys.argv[1]
r = json.load(open(os.path.join(dir, "out.json")))
bad = [line for line in r["report"] if not line.startswith("ok")]
for line in bad:
    print("  " + line)
print(f"  {len(r['report']) - len(bad)} of {len(r['report'])} flake output checks hold")
ok = not bad
# The generated `nix run .#deploy` wrapper must at least be valid bash.
for system, text in r["deployScripts"].items():
    path = os.path.join(dir, f"deploy-{system}.sh")
    with open(path, "w") as f:
        f.write("#!/usr/bin/env bash\nset -o errexit -o nounset -o pipefail\n" + text)
    if subprocess.run(["bash", "-n", path]).returncode != 0:
        print(f"  FAIL deploy wrapper ({system}) is not valid bash")
        ok = False
    if shutil.which("shellcheck") and subprocess.run(["shellcheck", "-S", "warning", path]).returncode != 0:
        print(f"  FAIL shellcheck on the deploy wrapper ({system})")
        ok = False
sys.exit(0 if ok else 1)
EOF
    fi
    rm -rf "$dir"
    return "$rc"
}

# `nix flake check` against the stub nixpkgs, made into a flake with a copy of the lib.
nix_flake_check() {
    local dir rc=0 all=()
    dir=$(mktemp -d)
    cp -r "$ROOT"/checks/eval/stub-nixpkgs/. "$dir/"
    cp -rL "$LIB_DIR" "$dir/lib"
    cat >"$dir/flake.nix" <<'EOF'
{
  outputs = { self }: {
    lib = import ./lib.nix;
    nixosModules.readOnlyPkgs = ./nixos/nixpkgs-read-only.nix;
  };
}
EOF
    # Newer Nix checks only the current system unless told otherwise.
    if nix flake check --help 2>/dev/null | grep -q -- --all-systems; then all=(--all-systems); fi
    nix flake check --no-build "${all[@]}" --no-write-lock-file \
        --override-input nixpkgs "path:$dir" "$ROOT" || rc=1
    rm -rf "$dir"
    return "$rc"
}

lib_status=0
LIB_DIR=$(find_lib) || lib_status=$?
if [ "$lib_status" -eq 0 ]; then
    echo "nixpkgs lib: $LIB_DIR ($(cat "$LIB_DIR/.version" 2>/dev/null || echo unknown version))"
    make_stub
    run "services.nanna-coder cases (NixOS stand-in, lib.evalModules)" module_cases
    run "module matrix: gpu x mode x import style" module_matrix
    run "flake outputs, hosts and VM test nodes evaluate" flake_eval
    run "nix flake check --no-build (stub nixpkgs)" nix_flake_check
    rm -rf "$STUB"
elif [ "$lib_status" -eq 1 ]; then
    msg="no nixpkgs lib tree: set NANNA_NIXPKGS_LIB to a checkout of nix-community/nixpkgs.lib (no registry reachable here carries it)"
    echo "== skipping the module and flake evaluation: $msg"
    record skip "services.nanna-coder cases" "$msg"
    record skip "module matrix" "$msg"
    record skip "flake outputs, hosts and VM test nodes" "$msg"
    record skip "nix flake check --no-build (stub nixpkgs)" "$msg"
else
    record FAIL "nixpkgs lib tree" "NANNA_NIXPKGS_LIB does not point at a nixpkgs lib"
fi

# --- summary ------------------------------------------------------------------------------
echo
echo "Nix checks summary"
printf '  %s\n' "${summary[@]}"
echo "Not covered here (no network, no KVM): package builds, clippy/rustfmt in the sandbox,"
echo "image builds and the NixOS VM tests -- run 'nix flake check' on a networked machine."
echo "nix-checks: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
