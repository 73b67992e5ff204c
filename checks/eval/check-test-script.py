#!/usr/bin/env python3
"""Static checks of NixOS VM test scripts, for machines that cannot run them (no KVM):
the script compiles, and every call on a node (`machine.succeed(...)`) names a method of
the test driver's Machine with arguments it accepts. The methods and their parameters are
those of BaseMachine in nixos/lib/test-driver/src/test_driver/machine/__init__.py
(NixOS/nixpkgs@019697db; only the methods read there are listed, so a real method missing
here is reported and should be added after reading it).

usage: check-test-script.py SCRIPTS.json   ({name: {"script": str, "nodes": [str]}})
"""
import ast
import json
import sys

# name -> (positional parameters after self, keyword-only parameters, takes *args)
METHODS = {
    "systemctl": (["q", "user"], [], False),
    "wait_for_unit": (["unit", "user", "timeout"], [], False),
    "get_unit_info": (["unit", "user"], [], False),
    "get_unit_property": (["unit", "property", "user"], [], False),
    "require_unit_state": (["unit", "require_state"], [], False),
    "succeed": ([], ["timeout"], True),
    "fail": ([], ["timeout"], True),
    "wait_until_succeeds": (["command", "timeout"], [], False),
    "wait_until_fails": (["command", "timeout"], [], False),
    "sleep": (["secs"], [], False),
    "wait_for_file": (["filename", "timeout"], [], False),
    "wait_for_open_port": (["port", "addr", "timeout"], [], False),
    "wait_for_open_unix_socket": (["addr", "is_datagram", "timeout"], [], False),
    "wait_for_closed_port": (["port", "addr", "timeout"], [], False),
    "start_job": (["jobname", "user"], [], False),
    "stop_job": (["jobname", "user"], [], False),
    "execute": (["command", "check_return", "check_output", "timeout"], [], False),
    "copy_from_machine": (["source", "target_dir"], [], False),
    "copy_from_host": (["source", "target"], [], False),
    "log": (["msg"], [], False),
    "start": ([], [], False),
}


def check(name, script, nodes):
    errors = []
    try:
        tree = ast.parse(script, filename=name)
        compile(tree, name, "exec")
    except SyntaxError as e:
        return [f"{name}: line {e.lineno}: {e.msg}"]
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        target = node.func.value
        if not (isinstance(target, ast.Name) and target.id in nodes):
            continue
        method = node.func.attr
        where = f"{name}: line {node.lineno}: {target.id}.{method}"
        if method not in METHODS:
            errors.append(f"{where}: not a method of the test driver's Machine (as read)")
            continue
        positional, kwonly, varargs = METHODS[method]
        if not varargs and len(node.args) > len(positional):
            errors.append(f"{where}: {len(node.args)} positional arguments, takes {len(positional)}")
        for kw in node.keywords:
            if kw.arg not in positional + kwonly:
                errors.append(f"{where}: unknown keyword argument {kw.arg!r}")
        if varargs and not node.args:
            errors.append(f"{where}: needs at least one command")
    return errors


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    scripts = json.load(open(sys.argv[1]))
    errors = []
    for name, t in sorted(scripts.items()):
        errors += check(name, t["script"], set(t["nodes"]))
    for e in errors:
        print("  FAIL " + e)
    print(f"  {len(scripts)} VM test scripts checked, {len(errors)} problems")
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
