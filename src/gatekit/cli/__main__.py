from gatekit.cli import main

main()
