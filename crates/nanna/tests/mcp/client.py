"""Drives an MCP server with the official Python SDK's client (PyPI `mcp`), for the tests of
`nanna mcp-server`. Reads a JSON list of steps on stdin, prints one JSON result per step:

  {"list": true}                         -> {"tools": [{"name", "read_only", "destructive"}...]}
  {"call": NAME, "args": {...}}          -> {"is_error": bool, "text": "..."}
                                            or {"protocol_error": "..."} (an MCP error reply)

  python3 client.py stdio CMD ARGS...    spawns the server
  python3 client.py http URL TOKEN       streamable HTTP with `Authorization: Bearer TOKEN`
"""

import json
import sys

import anyio
import httpx2
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError


async def run(session, steps):
    await session.initialize()
    for step in steps:
        if step.get("list"):
            result = await session.list_tools()
            tools = []
            for t in result.tools:
                a = t.annotations
                tools.append(
                    {
                        "name": t.name,
                        "read_only": a.read_only_hint if a else None,
                        "destructive": a.destructive_hint if a else None,
                        "schema": t.input_schema,
                    }
                )
            print(json.dumps({"tools": tools}), flush=True)
        else:
            try:
                result = await session.call_tool(step["call"], step.get("args", {}))
                text = "\n".join(c.text for c in result.content if getattr(c, "type", "") == "text")
                print(json.dumps({"is_error": result.is_error, "text": text}), flush=True)
            except MCPError as e:
                print(json.dumps({"protocol_error": str(e)}), flush=True)


async def main():
    steps = json.load(sys.stdin)
    if sys.argv[1] == "stdio":
        params = StdioServerParameters(command=sys.argv[2], args=sys.argv[3:])
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write) as session:
                await run(session, steps)
    else:
        url, token = sys.argv[2], sys.argv[3]
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx2.AsyncClient(headers=headers, timeout=30) as http:
            async with streamable_http_client(url, http_client=http) as streams:
                read, write = streams[0], streams[1]
                async with ClientSession(read, write) as session:
                    await run(session, steps)


anyio.run(main)
