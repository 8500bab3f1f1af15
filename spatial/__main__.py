from spatial.cli import main

main()
