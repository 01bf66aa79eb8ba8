from gatekit_mcp.cli import main

main()
