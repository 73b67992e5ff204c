"""MCP servers that misbehave, written with the official Python SDK (PyPI `mcp`, low-level
`Server`), for nanna-mcp's tests. One per mode:

  python3 faulty.py crash      `crash` writes to stderr and exits in the middle of a call;
                               `ok` answers normally
  python3 faulty.py silent     never answers the handshake
  python3 faulty.py malformed  lists tools with broken input schemas next to one that works
  python3 faulty.py slow       `slow` sleeps; when the client cancels the call, it writes the
                               file named by $MARKER (proof that notifications/cancelled came)
  python3 faulty.py spawner    `ok` answers; at start it leaves a grandchild (`sleep`) whose
                               pid it writes to $MARKER
  python3 faulty.py raw        lists a tool whose inputSchema is not an object at all; the SDK
                               refuses to send that, so this mode writes JSON-RPC by hand
"""

import os
import subprocess
import sys
import time

MODE = sys.argv[1] if len(sys.argv) > 1 else ""

if MODE == "raw":
    import json

    for line in sys.stdin:
        msg = json.loads(line)
        if msg.get("method") == "initialize":
            result = {
                "protocolVersion": "2025-06-18",
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "raw", "version": "0"},
            }
        elif msg.get("method") == "tools/list":
            result = {"tools": [{"name": "ok", "inputSchema": {"type": "object"}}, {"name": "bad", "inputSchema": "oops"}]}
        elif "id" in msg:
            result = None
        else:
            continue
        reply = {"jsonrpc": "2.0", "id": msg["id"]}
        if result is None:
            reply["error"] = {"code": -32601, "message": "method not found"}
        else:
            reply["result"] = result
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()
    sys.exit(0)

if MODE == "silent":
    # Before the SDK's (slow) imports, so the line is there however loaded the machine is.
    sys.stderr.write("faulty.py: up, but never answering\n")
    sys.stderr.flush()
    time.sleep(3600)
    sys.exit(0)

import anyio
import mcp_types as types
from mcp.server import Server
from mcp.server.stdio import stdio_server

GOOD = types.Tool(
    name="ok",
    description="Answers with its argument.",
    input_schema={"type": "object", "properties": {"x": {"type": "string"}}, "required": ["x"]},
)


async def list_tools(ctx, params):
    tools = [GOOD]
    if MODE == "crash":
        tools.append(types.Tool(name="crash", description="Dies mid-call.", input_schema={"type": "object"}))
    if MODE == "slow":
        tools.append(types.Tool(name="slow", description="Sleeps a minute.", input_schema={"type": "object"}))
    if MODE == "malformed":
        tools.append(
            types.Tool(
                name="bad_type",
                description="A property of an unknown type.",
                input_schema={"type": "object", "properties": {"a": {"type": "strnig"}}},
            )
        )
        tools.append(
            types.Tool(
                name="bad_union",
                description="A union that is not a list.",
                input_schema={"type": "object", "properties": {"a": {"anyOf": 3}}},
            )
        )
    return types.ListToolsResult(tools=tools)


async def call_tool(ctx, params):
    if params.name == "ok":
        x = (params.arguments or {}).get("x", "")
        return types.CallToolResult(content=[types.TextContent(text=f"ok: {x}")])
    if params.name == "crash":
        sys.stderr.write("faulty.py: simulated failure in the middle of a call\n")
        sys.stderr.flush()
        os._exit(3)
    if params.name == "slow":
        try:
            await anyio.sleep(60)
        except anyio.get_cancelled_exc_class():
            with open(os.environ["MARKER"], "w") as f:
                f.write("cancelled\n")
            raise
        return types.CallToolResult(content=[types.TextContent(text="slept")])
    raise ValueError(f"unknown tool {params.name}")


async def main():
    server = Server("faulty", version="1.0", on_list_tools=list_tools, on_call_tool=call_tool)
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())


if MODE == "spawner":
    child = subprocess.Popen(["sleep", "3600"])
    with open(os.environ["MARKER"], "w") as f:
        f.write(str(child.pid))
    anyio.run(main)
else:
    anyio.run(main)
